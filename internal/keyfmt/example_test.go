package keyfmt_test

import (
	"crypto/ed25519"
	"fmt"

	"github.com/knhk/knhk/internal/keyfmt"
)

// A JWK for an Ed25519 key (the RFC 8037 example key).
func ExampleNewJWK() {
	pub := ed25519.PublicKey{
		0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a,
		0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a,
	}
	j, err := keyfmt.NewJWK(pub, "")
	if err != nil {
		fmt.Println(err)
		return
	}
	out, _ := j.MarshalIndent()
	fmt.Print(string(out))
	// Output:
	// {
	//   "kty": "OKP",
	//   "use": "sig",
	//   "alg": "EdDSA",
	//   "kid": "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
	//   "crv": "Ed25519",
	//   "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
	// }
}
