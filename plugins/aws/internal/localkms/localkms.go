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
	"github.com/nsmithuk/local-kms/src/cmk"
	lconfig "github.com/nsmithuk/local-kms/src/config"
	"github.com/nsmithuk/local-kms/src/data"
	"gopkg.in/yaml.v2"
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

	closeOnce sync.Once
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

// Close stops the server and closes its database. Calling it again does
// nothing.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.srv.Close()
		s.db.Close()
	})
}

// Stop takes the emulator down the way a region outage does: it cuts
// every open connection, requests in flight included, then closes the
// server (new connections are refused) and its database.
func (s *Server) Stop() {
	s.srv.CloseClientConnections()
	s.Close()
}

// Seed loads keys written in local-kms's seed file format (its README,
// "Seeding file format": Keys.Asymmetric.Ecc and .Rsa entries with
// Metadata.KeyId, Metadata.KeyUsage and PrivateKeyPem) into the
// emulator's database. local-kms reads a seed file only from Run, which
// serves on the default mux and never returns; Seed is the same steps
// (the YAML parsing is local-kms's own, through its key types) for a
// server started here. The key id may be any id, e.g. a multi-Region
// key's mrk-..., which local-kms takes as it is.
func (s *Server) Seed(seedYAML []byte) error {
	var in struct {
		Keys struct {
			Asymmetric struct {
				Rsa []cmk.RsaKey `yaml:"Rsa"`
				Ecc []cmk.EccKey `yaml:"Ecc"`
			} `yaml:"Asymmetric"`
		} `yaml:"Keys"`
	}
	if err := yaml.UnmarshalStrict(seedYAML, &in); err != nil {
		return fmt.Errorf("local-kms seed: %w", err)
	}
	var keys []cmk.Key
	for i := range in.Keys.Asymmetric.Rsa {
		keys = append(keys, &in.Keys.Asymmetric.Rsa[i])
	}
	for i := range in.Keys.Asymmetric.Ecc {
		keys = append(keys, &in.Keys.Asymmetric.Ecc[i])
	}
	if len(keys) == 0 {
		return fmt.Errorf("local-kms seed: no Keys.Asymmetric.Rsa or .Ecc entries")
	}
	for _, k := range keys {
		if err := s.db.SaveKey(k); err != nil {
			return fmt.Errorf("local-kms seed: saving %s: %w", k.GetMetadata().KeyId, err)
		}
	}
	return nil
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
