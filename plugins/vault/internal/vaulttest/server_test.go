package vaulttest

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

func TestOutputHidesSecrets(t *testing.T) {
	s := &Server{RootToken: "root-0123456789ab", out: &syncBuffer{}}
	s.out.Write([]byte("Unseal Key: c2VjcmV0IHVuc2VhbCBrZXk=\nRoot Token: root-0123456789ab\nok\n"))
	out := s.Output()
	for _, secret := range []string{"root-0123456789ab", "c2VjcmV0IHVuc2VhbCBrZXk="} {
		if strings.Contains(out, secret) {
			t.Errorf("Output shows %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "ok") {
		t.Errorf("Output lost the other lines:\n%s", out)
	}
}

func TestFreePortPair(t *testing.T) {
	p, err := freePortPair()
	if err != nil {
		t.Fatal(err)
	}
	for _, port := range []int{p, p + 1} {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			t.Fatalf("port %d of the pair is not free: %v", port, err)
		}
		l.Close()
	}
}
