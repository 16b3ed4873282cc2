package shared

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ParamKind is what a parameter's value must look like.
type ParamKind int

// The kinds of parameter value ParamSchema.Parse checks.
const (
	ParamString   ParamKind = iota // any string
	ParamBool                      // strconv.ParseBool: true, false, 1, 0, ...
	ParamInt                       // a decimal integer
	ParamDuration                  // time.ParseDuration: "500ms", "2m"
	ParamURL                       // an absolute http or https URL without user info
	ParamPath                      // a file path, made absolute
	ParamEnum                      // one of Param.Choices
)

// Param declares one parameter a provider accepts in KeyRef.Params (or
// ListKeysRequest.Params).
type Param struct {
	// Name is the parameter's name as written in a key reference,
	// lower case: "region", "vault_url".
	Name string
	// Kind is what the value must look like; default ParamString.
	Kind ParamKind
	// Choices are the allowed values of a ParamEnum.
	Choices []string
	// Required makes Parse refuse a request without the parameter (after
	// Env and Default are applied).
	Required bool
	// Env is an environment variable of the plugin's process read when
	// the parameter is absent, e.g. "VAULT_ADDR".
	Env string
	// Default is the value when the parameter and Env are both absent.
	Default string
	// Doc is one line for documentation: what the parameter selects.
	Doc string
}

// ParamSchema is the set of parameters a provider accepts. Declare it
// once, as a package variable, and Parse every request's parameters with
// it: unknown names, malformed values and missing required parameters
// get the same errors in every plugin.
type ParamSchema struct {
	provider string
	params   []Param
}

// NewParamSchema declares a provider's parameters. It panics on a
// declaration mistake (a duplicate or empty name, an enum without
// choices), which a plugin's first test finds.
func NewParamSchema(provider string, params ...Param) *ParamSchema {
	seen := map[string]bool{}
	for _, p := range params {
		if p.Name == "" || seen[p.Name] {
			panic(fmt.Sprintf("knhk: %s: parameter name %q is empty or declared twice", provider, p.Name))
		}
		if p.Kind == ParamEnum && len(p.Choices) == 0 {
			panic(fmt.Sprintf("knhk: %s: enum parameter %q has no choices", provider, p.Name))
		}
		seen[p.Name] = true
	}
	return &ParamSchema{provider: provider, params: params}
}

// Params returns the declared parameters, in declaration order.
func (s *ParamSchema) Params() []Param { return slices.Clone(s.params) }

// Names returns the declared parameter names, sorted.
func (s *ParamSchema) Names() []string {
	names := make([]string, len(s.params))
	for i, p := range s.params {
		names[i] = p.Name
	}
	slices.Sort(names)
	return names
}

func (s *ParamSchema) lookup(name string) (Param, bool) {
	for _, p := range s.params {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}

// Parse checks a request's parameters against the schema and returns
// them with Env and Default applied. Errors wrap ErrInvalidArgument: an
// unknown name ("unknown parameter X; known: …", and for a name that looks
// like a secret, that secrets never travel in key references), a
// malformed value, or a missing required parameter. Values are never
// echoed for unknown or secret-looking names.
func (s *ParamSchema) Parse(m map[string]string) (Params, error) {
	unknown := make([]string, 0)
	for name := range m {
		if _, ok := s.lookup(name); !ok {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		for _, name := range unknown {
			if LooksSecret(name) {
				return Params{}, fmt.Errorf("%w: %s: parameter %s looks like a secret and is refused: key references end up in configs, logs and shell history, so credentials come from the plugin's environment or a file (known parameters: %s)",
					ErrInvalidArgument, s.provider, Quote(name), strings.Join(s.Names(), ", "))
			}
		}
		quoted := make([]string, len(unknown))
		for i, n := range unknown {
			quoted[i] = Quote(n)
		}
		return Params{}, fmt.Errorf("%w: %s: unknown parameter %s; known: %s",
			ErrInvalidArgument, s.provider, strings.Join(quoted, ", "), strings.Join(s.Names(), ", "))
	}
	out := Params{schema: s, values: make(map[string]string, len(s.params))}
	for _, p := range s.params {
		v, ok := m[p.Name]
		if !ok && p.Env != "" {
			v, ok = os.LookupEnv(p.Env)
			ok = ok && v != ""
		}
		if !ok && p.Default != "" {
			v, ok = p.Default, true
		}
		if !ok {
			if p.Required {
				how := "set it in the key reference"
				if p.Env != "" {
					how += " or set " + p.Env
				}
				return Params{}, fmt.Errorf("%w: %s: parameter %s is required (%s): %s", ErrInvalidArgument, s.provider, p.Name, p.Doc, how)
			}
			continue
		}
		v, err := p.check(v)
		if err != nil {
			return Params{}, fmt.Errorf("%w: %s: parameter %s: %v", ErrInvalidArgument, s.provider, p.Name, err)
		}
		out.values[p.Name] = v
	}
	return out, nil
}

// check validates one value and returns it in canonical form.
func (p Param) check(v string) (string, error) {
	switch p.Kind {
	case ParamBool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return "", fmt.Errorf("%s is not true or false", Quote(v))
		}
		return strconv.FormatBool(b), nil
	case ParamInt:
		n, err := strconv.Atoi(v)
		if err != nil {
			return "", fmt.Errorf("%s is not a whole number", Quote(v))
		}
		return strconv.Itoa(n), nil
	case ParamDuration:
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return "", fmt.Errorf("%s is not a duration such as 500ms or 2m", Quote(v))
		}
		return d.String(), nil
	case ParamURL:
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", fmt.Errorf("%s is not an http(s) URL", Quote(RedactURL(v)))
		}
		if u.User != nil {
			return "", fmt.Errorf("%s carries user info; credentials never go in a URL parameter", Quote(RedactURL(v)))
		}
		return v, nil
	case ParamPath:
		if strings.TrimSpace(v) == "" {
			return "", fmt.Errorf("the path is empty")
		}
		abs, err := filepath.Abs(v)
		if err != nil {
			return "", fmt.Errorf("%s: %v", Quote(v), err)
		}
		return abs, nil
	case ParamEnum:
		if !slices.Contains(p.Choices, v) {
			return "", fmt.Errorf("%s is not one of %s", Quote(v), strings.Join(p.Choices, ", "))
		}
	}
	return v, nil
}

// Params are a request's parameters, checked by ParamSchema.Parse, with
// defaults applied. The getters panic on a name the schema does not
// declare: that is a bug in the provider, not in the request.
type Params struct {
	schema *ParamSchema
	values map[string]string
}

func (p Params) get(name string, kinds ...ParamKind) string {
	if p.schema == nil {
		panic("knhk: Params used without ParamSchema.Parse")
	}
	d, ok := p.schema.lookup(name)
	if !ok || !slices.Contains(kinds, d.Kind) {
		panic(fmt.Sprintf("knhk: %s: parameter %q is not declared with this kind", p.schema.provider, name))
	}
	return p.values[name]
}

// Has reports whether the parameter has a value (given, from Env or a Default).
func (p Params) Has(name string) bool {
	p.get(name, ParamString, ParamBool, ParamInt, ParamDuration, ParamURL, ParamPath, ParamEnum)
	_, ok := p.values[name]
	return ok
}

// String returns a ParamString, ParamURL, ParamPath or ParamEnum value, or "".
func (p Params) String(name string) string {
	return p.get(name, ParamString, ParamURL, ParamPath, ParamEnum)
}

// Bool returns a ParamBool value; false when absent.
func (p Params) Bool(name string) bool {
	return p.get(name, ParamBool) == "true"
}

// Int returns a ParamInt value; 0 when absent.
func (p Params) Int(name string) int {
	n, _ := strconv.Atoi(p.get(name, ParamInt))
	return n
}

// Duration returns a ParamDuration value; 0 when absent.
func (p Params) Duration(name string) time.Duration {
	d, _ := time.ParseDuration(p.get(name, ParamDuration))
	return d
}

// Key returns a string that names the values of the given parameters (all
// declared ones when none are named): equal keys, equal settings. Use it
// as a ClientCache key, naming the parameters that select a connection.
func (p Params) Key(names ...string) string {
	if len(names) == 0 {
		names = p.schema.Names()
	}
	var b strings.Builder
	for _, n := range names {
		if _, ok := p.schema.lookup(n); !ok {
			panic(fmt.Sprintf("knhk: %s: Key of undeclared parameter %q", p.schema.provider, n))
		}
		v, ok := p.values[n]
		b.WriteString(n)
		if ok {
			b.WriteByte('=')
			b.WriteString(v)
		}
		b.WriteByte(0)
	}
	return b.String()
}
