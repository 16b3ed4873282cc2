// Package keyfmt encodes public keys for people and other tools: PEM
// SubjectPublicKeyInfo (what openssl reads) and JSON Web Keys (RFC 7517,
// with the key parameters of RFC 7518 for RSA and EC and RFC 8037 for
// Ed25519).
package keyfmt
