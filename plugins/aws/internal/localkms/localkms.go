// Package localkms runs the local-kms AWS KMS emulator
// (github.com/nsmithuk/local-kms) inside a test process, on 127.0.0.1,
// with a fresh database. Only tests import it, so the plugin binary does
// not link the emulator.
package localkms

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	lkms "github.com/nsmithuk/local-kms/src"
	lconfig "github.com/nsmithuk/local-kms/src/config"
	"github.com/nsmithuk/local-kms/src/data"
)

// The emulator's region and account are process-wide variables, so every
// server in a test process shares them.
const (
	Region    = "eu-west-2"
	AccountID = "111122223333"
)

// Static test credentials. The emulator does not check them; the SDK needs
// some to sign requests.
const (
	AccessKeyID     = "AKIDKNHKLOCALKMSTEST"
	SecretAccessKey = "knhk-local-kms-test-secret-not-a-real-one"
)

// RequestIDPrefix starts every request id the test server sends.
const RequestIDPrefix = "localkms-req-"

var configOnce sync.Once

// Server is a running emulator.
type Server struct {
	// URL is the endpoint to pass as the endpoint parameter.
	URL string
	srv *httptest.Server
	db  *data.Database
}

// Start runs an emulator, with its database in a temporary directory,
// until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := New(t.TempDir())
	t.Cleanup(s.Close)
	return s
}

// New runs an emulator with its database in dir (which should be empty)
// until Close.
func New(dir string) *Server {
	configOnce.Do(func() {
		lconfig.AWSRegion = Region
		lconfig.AWSAccountId = AccountID
	})
	lconfig.DatabasePath = dir
	db := data.NewDatabase(dir)
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Real KMS names every response with a request id; the emulator
		// does not, so add one the way KMS sends it.
		w.Header().Set("X-Amzn-Requestid", fmt.Sprintf("%s%08d", RequestIDPrefix, n.Add(1)))
		lkms.HandleRequest(w, r, db)
	}))
	return &Server{URL: srv.URL, srv: srv, db: db}
}

// Close stops the server and closes its database.
func (s *Server) Close() {
	s.srv.Close()
	s.db.Close()
}

// Client returns an SDK client for the emulator with the static test
// credentials, for test set-up (disabling keys, reading tags).
func (s *Server) Client() *kms.Client {
	return kms.New(kms.Options{
		Region:       Region,
		BaseEndpoint: aws.String(s.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
	})
}

// Env is the environment a plugin process needs to reach the emulator
// through the standard credentials chain.
func Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + SecretAccessKey,
		"AWS_REGION=" + Region,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
	}
}

// DisableKey disables a key, for tests of the disabled-key error.
func (s *Server) DisableKey(ctx context.Context, keyID string) error {
	_, err := s.Client().DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(keyID)})
	return err
}
