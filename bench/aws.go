package main

import (
	"context"
	"crypto"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	lkms "github.com/nsmithuk/local-kms/src"
	lconfig "github.com/nsmithuk/local-kms/src/config"
	"github.com/nsmithuk/local-kms/src/data"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/internal/procinfo"
	"github.com/knhk/knhk/shared"
)

// The emulator's region and account, and static credentials it does not
// check (the SDK needs some to sign requests).
const (
	awsRegion  = "eu-west-2"
	awsAccount = "111122223333"
	awsKeyID   = "AKIDKNHKBENCH"
	awsSecret  = "knhk-bench-not-a-secret"
)

// awsCallers is row 5's concurrency.
const awsCallers = 16

type awsResult struct {
	direct, host measure
	ratio        float64 // host ÷ direct, median of the rounds
}

// row5 signs with an ECC_NIST_P256 key in local-kms, served in this
// process on 127.0.0.1: through the host and the AWS plugin binary, and
// with aws-sdk-go-v2 calling the emulator directly, alternating twice.
func (b *bench) row5(ctx context.Context) error {
	if run, err := b.awsPlugin(); !run {
		return err
	}
	srv, stopKMS, err := b.localKMS()
	if err != nil {
		return err
	}
	defer stopKMS()
	client, id, err := awsClientAndKey(ctx, srv.URL)
	if err != nil {
		return err
	}

	h, stop, err := b.newHost(host.Config{})
	if err != nil {
		return err
	}
	defer stop()
	signer, err := h.Signer(ctx, "aws:"+id+"?region="+awsRegion+"&endpoint="+srv.URL)
	if err != nil {
		return err
	}
	direct, viaHost := directSign(ctx, client, id), hostSign(signer)
	if err := signOnceChecked(signer); err != nil {
		return err
	}
	// The same through a host with verify-after-sign off: how much of
	// the overhead is the local verification.
	h2, stop2, err := b.newHost(host.Config{DisableVerifyAfterSign: true})
	if err != nil {
		return err
	}
	defer stop2()
	unverified, err := h2.Signer(ctx, "aws:"+id+"?region="+awsRegion+"&endpoint="+srv.URL)
	if err != nil {
		return err
	}
	viaHostNoVerify := hostSign(unverified)
	// And with batching off: a batch answers when its slowest item does,
	// which a provider waiting on a network may feel.
	h3, stop3, err := b.newHost(host.Config{DisableBatching: true})
	if err != nil {
		return err
	}
	defer stop3()
	unbatched, err := h3.Signer(ctx, "aws:"+id+"?region="+awsRegion+"&endpoint="+srv.URL)
	if err != nil {
		return err
	}
	viaHostNoBatch := hostSign(unbatched)
	ms, ratios, err := alternateRounds(awsCallers, b.dur, 4, direct, viaHost, viaHostNoVerify, viaHostNoBatch)
	if err != nil {
		return err
	}
	for _, pid := range procinfo.Children("knhk-plugin-aws") {
		b.peak("knhk-plugin-aws", pid)
	}
	b.aws = awsResult{direct: ms[0], host: ms[1], ratio: ratios[1]}
	ops, p50, p99 := fromMeasure(b.aws.direct)
	b.res.add(Row{Row: 5, Name: "aws-sdk-go-v2 → local-kms directly", Alg: "ES256", Callers: awsCallers, OpsPerSec: ops, P50us: p50, P99us: p99})
	ops, p50, p99 = fromMeasure(b.aws.host)
	b.res.add(Row{Row: 5, Name: "host → aws plugin → local-kms", Alg: "ES256", Callers: awsCallers, Verify: "on", OpsPerSec: ops, P50us: p50, P99us: p99,
		Ratio: ratios[1], RatioTo: "direct, median of rounds",
		Note: "alternating with the direct runs; the emulator runs in the benchmark process"})
	ops, p50, p99 = fromMeasure(ms[2])
	b.res.add(Row{Row: 5, Name: "host → aws plugin → local-kms", Alg: "ES256", Callers: awsCallers, Verify: "off", OpsPerSec: ops, P50us: p50, P99us: p99,
		Ratio: ratios[2], RatioTo: "direct, median of rounds"})
	ops, p50, p99 = fromMeasure(ms[3])
	b.res.add(Row{Row: 5, Name: "host → aws plugin, batching off", Alg: "ES256", Callers: awsCallers, Verify: "on", OpsPerSec: ops, P50us: p50, P99us: p99,
		Ratio: ratios[3], RatioTo: "direct, median of rounds"})
	return nil
}

// localKMS serves local-kms in this process on 127.0.0.1, its database in
// the benchmark's temporary directory, and sets the AWS environment the
// plugin process inherits through the standard credential chain.
func (b *bench) localKMS() (*httptest.Server, func(), error) {
	dir := filepath.Join(b.tmp, "local-kms")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	lconfig.AWSRegion, lconfig.AWSAccountId, lconfig.DatabasePath = awsRegion, awsAccount, dir
	db := data.NewDatabase(dir)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { lkms.HandleRequest(w, r, db) }))
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": awsKeyID, "AWS_SECRET_ACCESS_KEY": awsSecret, "AWS_REGION": awsRegion,
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
	} {
		os.Setenv(k, v)
	}
	return srv, func() { srv.Close(); db.Close() }, nil
}

// awsClientAndKey makes an SDK client of the KMS at endpoint and an
// ECC_NIST_P256 signing key in it.
func awsClientAndKey(ctx context.Context, endpoint string) (*kms.Client, string, error) {
	client := kms.New(kms.Options{Region: awsRegion, BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(awsKeyID, awsSecret, "")})
	created, err := client.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify})
	if err != nil {
		return nil, "", fmt.Errorf("local-kms CreateKey: %w", err)
	}
	return client, aws.ToString(created.KeyMetadata.KeyId), nil
}

// directSign signs the benchmark digest with the SDK client alone.
func directSign(ctx context.Context, client *kms.Client, id string) func(int) error {
	return func(int) error {
		out, err := client.Sign(ctx, &kms.SignInput{KeyId: aws.String(id), Message: digest[:],
			MessageType: types.MessageTypeDigest, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
		if err == nil && len(out.Signature) == 0 {
			err = fmt.Errorf("empty signature")
		}
		return err
	}
}

// hostSign signs the benchmark digest through a host's Signer.
func hostSign(s crypto.Signer) func(int) error {
	return func(int) error {
		_, err := s.Sign(nil, digest[:], crypto.SHA256)
		return err
	}
}

// signOnceChecked signs once through s and verifies the signature with
// the standard library: a run that measured bad signatures would be
// worthless.
func signOnceChecked(s crypto.Signer) error {
	sig, err := s.Sign(nil, digest[:], crypto.SHA256)
	if err != nil {
		return err
	}
	return shared.VerifyDigest(s.Public(), shared.ES256, digest[:], sig)
}

// awsPlugin reports whether the AWS rows run: not with -inproc (the
// AWS plugin only runs as a binary), and an error when its binary is
// not built.
func (b *bench) awsPlugin() (bool, error) {
	if b.inproc {
		return false, nil
	}
	if _, err := os.Stat(filepath.Join(b.bin, "plugins", "knhk-plugin-aws")); err != nil {
		return false, fmt.Errorf("the AWS plugin is not built (make build): %w", err)
	}
	return true, nil
}
