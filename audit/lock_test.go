package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func TestLockRefusesSecondWriter(t *testing.T) {
	key := writerKey(t, "test.example/audit")
	o, _ := testOptions(t, t.TempDir(), key)
	l := mustOpen(t, o)
	start := time.Now()
	_, err := Open(context.Background(), o)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), o.Path+".lock") || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("second Open: %v", err)
	}
	if waited := time.Since(start); waited < o.LockTimeout {
		t.Fatalf("gave up after %v, before LockTimeout", waited)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	o2 := o
	o2.LockTimeout = time.Hour
	if _, err := Open(ctx, o2); !errors.Is(err, context.Canceled) {
		t.Fatalf("Open with a cancelled ctx: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, o)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}
