package config

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Redacted is what the API shows in place of a secret value. Applying it
// back keeps the stored value.
const Redacted = "<redacted>"

// SecretValue is a secret in memory. It prints, logs and marshals as
// "<secret>" so that it cannot leak through a log line, an error or an API
// answer; Reveal returns the value.
type SecretValue string

// String implements fmt.Stringer.
func (SecretValue) String() string { return "<secret>" }

// GoString implements fmt.GoStringer.
func (SecretValue) GoString() string { return "<secret>" }

// LogValue implements slog.LogValuer.
func (SecretValue) LogValue() slog.Value { return slog.StringValue("<secret>") }

// MarshalJSON implements json.Marshaler.
func (SecretValue) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText implements encoding.TextMarshaler.
func (SecretValue) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// Reveal returns the secret.
func (s SecretValue) Reveal() string { return string(s) }

// Cipher seals secret values at rest.
type Cipher interface {
	Seal(plaintext []byte) (string, error)
	Open(sealed string) ([]byte, error)
}

// sealedPrefix marks an AES-GCM sealed value: "v1:" + base64(nonce|ciphertext).
const sealedPrefix = "v1:"

// AESCipher is AES-256-GCM with a random nonce per value.
type AESCipher struct {
	aead cipher.AEAD
	key  []byte
}

// Derive returns a 32-byte key for another use, named by label, derived
// from the secret key (HMAC-SHA256), so that every instance sharing the
// secret key derives the same one.
func (c *AESCipher) Derive(label string) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte("vigil/" + label))
	return m.Sum(nil)
}

// NewAESCipher returns a cipher for a 32-byte key.
func NewAESCipher(key []byte) (*AESCipher, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("secret key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	return &AESCipher{aead: aead, key: bytes.Clone(key)}, nil
}

// LoadOrCreateKey reads a base64 key file, creating it (mode 0600, 256
// random bits) when it does not exist.
func LoadOrCreateKey(path string) (*AESCipher, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("generate secret key: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("secret key: %w", err)
		}
		enc := base64.StdEncoding.EncodeToString(key) + "\n"
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("create secret key %s: %w", path, err)
		}
		if _, err := f.WriteString(enc); err != nil {
			f.Close()
			return nil, fmt.Errorf("write secret key %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("write secret key %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("write secret key %s: %w", path, err)
		}
		return NewAESCipher(key)
	}
	if err != nil {
		return nil, fmt.Errorf("read secret key %s: %w", path, err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("secret key %s: not base64: %w", path, err)
	}
	c, err := NewAESCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret key %s: %w", path, err)
	}
	return c, nil
}

// Seal encrypts plaintext.
func (c *AESCipher) Seal(plaintext []byte) (string, error) {
	nonce := make([]byte, c.aead.NonceSize(), c.aead.NonceSize()+len(plaintext)+c.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("nonce: %w", err)
	}
	out := c.aead.Seal(nonce, nonce, plaintext, nil)
	return sealedPrefix + base64.StdEncoding.EncodeToString(out), nil
}

// Open decrypts a value made by Seal.
func (c *AESCipher) Open(sealed string) ([]byte, error) {
	raw, ok := strings.CutPrefix(sealed, sealedPrefix)
	if !ok {
		return nil, errors.New("not a sealed value")
	}
	data, err := base64.StdEncoding.DecodeString(raw)
	if err != nil || len(data) < c.aead.NonceSize() {
		return nil, errors.New("malformed sealed value")
	}
	ns := c.aead.NonceSize()
	pt, err := c.aead.Open(nil, data[:ns], data[ns:], nil)
	if err != nil {
		return nil, fmt.Errorf("open sealed value: %w", err)
	}
	return pt, nil
}

// KindSecret is the kind of a Secret object.
const KindSecret = "Secret"

// SecretSpec is the spec of a Secret: named string values.
type SecretSpec struct {
	// Data maps keys to values. Values are encrypted at rest and shown as
	// "<redacted>".
	Data map[string]string `json:"data"`
	// Description is free text.
	Description string `json:"description,omitempty"`
}

// MaxSecretKeys and MaxSecretValue bound one Secret.
const (
	MaxSecretKeys  = 64
	MaxSecretValue = 64 << 10
)

var secretKeyRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)

func init() {
	Register(Kind{
		Name:        KindSecret,
		Description: "named values encrypted at rest (AES-GCM), shown redacted",
		Sensitive:   true,
		Validate:    validateSecret,
		Seal:        sealSecret,
		Redact:      redactSecret,
	})
}

func decodeSecret(spec json.RawMessage) (*SecretSpec, error) {
	var s SecretSpec
	if err := DecodeSpec(spec, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

func validateSecret(spec json.RawMessage) error {
	s, err := decodeSecret(spec)
	if err != nil {
		return err
	}
	if len(s.Data) == 0 {
		return Errorf("spec.data", "must hold at least one key")
	}
	if len(s.Data) > MaxSecretKeys {
		return Errorf("spec.data", "holds %d keys, at most %d allowed", len(s.Data), MaxSecretKeys)
	}
	for k, v := range s.Data {
		if !secretKeyRE.MatchString(k) {
			return Errorf("spec.data."+k, "key must be 1-128 letters, digits, '_', '-' or '.'")
		}
		if len(v) > MaxSecretValue {
			return Errorf("spec.data."+k, "value is %d bytes, at most %d allowed", len(v), MaxSecretValue)
		}
	}
	return nil
}

func sealSecret(c Cipher, spec, prev json.RawMessage) (json.RawMessage, error) {
	if c == nil {
		return nil, errors.New("no secret key configured")
	}
	s, err := decodeSecret(spec)
	if err != nil {
		return nil, err
	}
	var old *SecretSpec
	if prev != nil {
		if old, err = decodeSecret(prev); err != nil {
			return nil, fmt.Errorf("stored secret: %w", err)
		}
	}
	out := SecretSpec{Data: make(map[string]string, len(s.Data)), Description: s.Description}
	for k, v := range s.Data {
		var stored string
		var had bool
		if old != nil {
			stored, had = old.Data[k]
		}
		if v == Redacted {
			if !had {
				return nil, Errorf("spec.data."+k, "is %q but no value is stored for this key", Redacted)
			}
			out.Data[k] = stored
			continue
		}
		if had {
			if pt, err := c.Open(stored); err == nil && string(pt) == v {
				out.Data[k] = stored // unchanged: keep the ciphertext so the object stays unchanged
				continue
			}
		}
		sealed, err := c.Seal([]byte(v))
		if err != nil {
			return nil, fmt.Errorf("seal spec.data.%s: %w", k, err)
		}
		out.Data[k] = sealed
	}
	return marshal(out)
}

func redactSecret(spec json.RawMessage) json.RawMessage {
	var s SecretSpec
	if err := json.Unmarshal(spec, &s); err != nil {
		return json.RawMessage(`{}`)
	}
	keys := make([]string, 0, len(s.Data))
	for k := range s.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s.Data[k] = Redacted
	}
	out, _ := marshal(s)
	return out
}

// SecretReader is what ReadSecret needs: stored objects, and the key that
// opens Secrets.
type SecretReader interface {
	Get(ctx context.Context, kind, name string) (*Object, error)
	Cipher() Cipher
}

// ReadSecret returns the plain values of the stored Secret name; errors
// name it.
func ReadSecret(ctx context.Context, s SecretReader, name string) (map[string]SecretValue, error) {
	obj, err := s.Get(ctx, KindSecret, name)
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", name, err)
	}
	c := s.Cipher()
	if c == nil {
		return nil, fmt.Errorf("secret %s: no secret key", name)
	}
	open, err := OpenSecret(c, obj.Spec)
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", name, err)
	}
	return open, nil
}

// OpenSecret returns the plain values of a stored Secret spec.
func OpenSecret(c Cipher, spec json.RawMessage) (map[string]SecretValue, error) {
	s, err := decodeSecret(spec)
	if err != nil {
		return nil, err
	}
	out := make(map[string]SecretValue, len(s.Data))
	for k, v := range s.Data {
		pt, err := c.Open(v)
		if err != nil {
			return nil, fmt.Errorf("secret key %s: %w", k, err)
		}
		out[k] = SecretValue(pt)
	}
	return out, nil
}

// marshal encodes v as JSON without escaping <, > and &, so that stored and
// shown objects read as written.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
