package keyfmt

import (
	"encoding/pem"
	"fmt"

	"github.com/knhk/knhk/shared"
)

// PEM encodes a DER SubjectPublicKeyInfo as a "PUBLIC KEY" PEM block, the
// format `openssl pkey -pubin` reads. It checks that der parses first, so a
// provider's garbage never reaches the output.
func PEM(der []byte) ([]byte, error) {
	if _, _, err := shared.ParsePublicKey(der); err != nil {
		return nil, fmt.Errorf("encode PEM: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
