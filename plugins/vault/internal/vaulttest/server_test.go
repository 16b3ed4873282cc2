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

func TestOutputBounded(t *testing.T) {
	var b syncBuffer
	b.Write([]byte("banner\n"))
	line := []byte(strings.Repeat("x", 99) + "\n")
	for range (outputHead + 2*outputTail) / len(line) {
		b.Write(line)
	}
	b.Write([]byte("last words\n"))
	out := b.String()
	if len(out) > outputHead+outputTail+100 {
		t.Errorf("output kept %d bytes; want at most about %d", len(out), outputHead+outputTail)
	}
	for _, want := range []string{"banner\n", "bytes not kept", "last words\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}
