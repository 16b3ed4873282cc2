package azure

import (
	"context"
	"os"
	"sync"
	"sync/atomic"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azlog "github.com/Azure/azure-sdk-for-go/sdk/azcore/log"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/hashicorp/go-hclog"

	"github.com/knhk/knhk/shared"
)

// Name is the provider's name, as in knhk-plugin-azure and "azure:" key references.
const Name = "azure"

// Config configures a Provider. The zero value works: credentials from
// AZURE_AUTH_TOKEN or DefaultAzureCredential, the SDK's retry policy.
type Config struct {
	// Version is reported by Describe. Empty: the SDK reports
	// shared.BuildVersion().
	Version string
	// Logger receives one debug line per operation and, at trace level,
	// the Azure SDK's request/response log (headers sanitised, no bodies,
	// tokens redacted). Nil: shared.Logger().
	Logger hclog.Logger
	// Credential, when set, authenticates every request instead of
	// AZURE_AUTH_TOKEN or DefaultAzureCredential (embedders, tests).
	Credential azcore.TokenCredential
	// Retry tunes the SDK's retries of 408, 429 and 5xx responses. Zero
	// means the SDK default: 3 retries with exponential backoff, honouring
	// Retry-After.
	Retry policy.RetryOptions
}

// Provider is the Azure Key Vault provider. It is safe for concurrent use.
type Provider struct {
	cfg    Config
	token  string   // AZURE_AUTH_TOKEN, read once by New
	tokens tokenSet // every token handed out, for redaction

	clients shared.ClientCache[*azkeys.Client]
}

var _ shared.Provider = (*Provider)(nil)

// New returns a Provider. It reads AZURE_AUTH_TOKEN once, here, and
// routes the Azure SDK's process-wide log to cfg.Logger (see Config).
func New(cfg Config) *Provider {
	if cfg.Logger == nil {
		cfg.Logger = shared.Logger()
	}
	p := &Provider{cfg: cfg, token: os.Getenv(EnvAuthToken)}
	routeSDKLog(p)
	return p
}

// keyTypes are what Key Vault can do for knhk: no Ed25519.
var keyTypes = []shared.KeyType{shared.RSA2048, shared.RSA3072, shared.RSA4096, shared.ECP256, shared.ECP384, shared.ECP521}

// Describe names the provider and what it supports. It calls no vault.
func (p *Provider) Describe(context.Context) (shared.Description, error) {
	return shared.Description{
		Name:         Name,
		Version:      p.cfg.Version,
		Capabilities: []shared.Capability{shared.CapCreateKey, shared.CapListKeys, shared.CapRotateKey, shared.CapVerify, shared.CapVersionStates},
		KeyTypes:     append([]shared.KeyType(nil), keyTypes...),
		Algorithms:   shared.AlgorithmsFor(keyTypes...),
		Quotas:       Quotas(),
	}, nil
}

// quotaSource is where Key Vault documents its request limits: "Azure
// Key Vault service limits", "Key transactions (maximum transactions
// allowed in 10 seconds, per vault per region)".
const quotaSource = "https://learn.microsoft.com/en-us/azure/key-vault/general/service-limits"

// Quotas are the Key Vault request limits the plugin declares
// (shared.QuotaClass), one bucket per vault (the key id's origin; the
// vault_url parameter for listing). Key Vault counts per 10 seconds and
// weights key types, enforcing the sum: HSM keys allow 2,000 "all other
// transactions" (sign, verify, get) per 10 s with RSA-2048 and every
// ECC curve, 500 with RSA-3072 and 250 with RSA-4096, so an RSA-3072
// operation weighs 4 and an RSA-4096 one 8; CREATE allows 10 per 10 s.
// Software keys allow twice as much (4,000 and 20): the defaults assume
// HSM keys, the stricter; raise "keys" to 400 and "create" to 2 for
// vaults of software keys. Managed HSM pools have limits of their own:
// set them in the host's configuration. The subscription-wide limit
// (five times a vault's) is not modelled.
func Quotas() []shared.QuotaClass {
	vault := []string{shared.ScopeKeyOrigin}
	return []shared.QuotaClass{{
		Name:       "keys",
		Operations: []shared.Operation{shared.OpSign, shared.OpVerify, shared.OpPublicKey, shared.OpMetadata},
		Scope:      vault, Rate: 200, Source: quotaSource,
		Weights: map[shared.KeyType]int{shared.RSA3072: 4, shared.RSA4096: 8},
	}, {
		Name:       "create",
		Operations: []shared.Operation{shared.OpCreateKey, shared.OpRotate},
		Scope:      vault, Rate: 1, Burst: 1, Source: quotaSource,
	}, {
		Name:       "list",
		Operations: []shared.Operation{shared.OpListKeys},
		Scope:      []string{ParamVaultURL}, Rate: 200, Source: quotaSource,
	}}
}

// sdkLog is the provider whose logger receives the Azure SDK's log, which
// is one per process: the most recently made.
var sdkLog atomic.Pointer[Provider]

// installSDKLog sets the Azure SDK's listener once. The listener itself
// replaces the console logger AZURE_SDK_GO_LOGGING=all would install,
// which prints everything, error bodies included, to stderr.
var installSDKLog = sync.OnceFunc(func() {
	// No ResponseError events: they carry the response body, which can
	// echo the request's token. Bodies are never logged otherwise either
	// (LogOptions.IncludeBody stays unset).
	azlog.SetEvents(azlog.EventRequest, azlog.EventResponse, azlog.EventRetryPolicy, azidentity.EventAuthentication)
	azlog.SetListener(func(ev azlog.Event, msg string) {
		p := sdkLog.Load()
		if p == nil || !p.cfg.Logger.IsTrace() || ev == azlog.EventResponseError {
			return
		}
		p.cfg.Logger.Trace(p.redact(msg), "event", string(ev))
	})
})

// routeSDKLog sends the Azure SDK's log to p's logger, at trace level.
func routeSDKLog(p *Provider) {
	sdkLog.Store(p)
	installSDKLog()
}
