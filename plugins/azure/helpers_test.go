package azure_test

import (
	"crypto"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"os"
	"strings"
)

// caClient is an HTTP client trusting the PEM certificates in caFile.
func caClient(caFile string) (*http.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("no certificate in " + caFile)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}, nil
}

// rsaVerifyPSSEqualsHash checks a PSS signature whose salt is exactly the
// hash length, as Key Vault makes them.
func rsaVerifyPSSEqualsHash(pub crypto.PublicKey, h crypto.Hash, digest, sig []byte) error {
	rk, ok := pub.(*rsa.PublicKey)
	if !ok {
		return errors.New("not an RSA key")
	}
	return rsa.VerifyPSS(rk, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
}

const cryptoSHA256 = crypto.SHA256

func errorIs(err, target error) bool { return errors.Is(err, target) }

func contains(err error, s string) bool { return err != nil && strings.Contains(err.Error(), s) }
