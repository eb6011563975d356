package config

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const plain = "hunter2-very-secret"

func secretObj(name string, data map[string]string) *Object {
	spec, _ := json.Marshal(SecretSpec{Data: data})
	return &Object{Kind: "Secret", Name: name, Spec: spec}
}

func TestSecretEncryptedAtRestAndRedacted(t *testing.T) {
	ctx := context.Background()
	st, _ := openTestStore(t, StoreOptions{})
	res, err := st.Apply(ctx, []*Object{secretObj("db", map[string]string{"password": plain, "user": "app"})}, ApplyOptions{User: "u"})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(res[0].Object.Spec, []byte(plain)) || !bytes.Contains(res[0].Object.Spec, []byte(Redacted)) {
		t.Fatalf("apply result not redacted: %s", res[0].Object.Spec)
	}
	// The raw KV value holds ciphertext only.
	entry, err := st.kv.Get(ctx, "Secret.db")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(entry.Value(), []byte(plain)) || bytes.Contains(entry.Value(), []byte(`"app"`)) {
		t.Fatalf("secret stored in clear: %s", entry.Value())
	}
	stored, _ := st.Get(ctx, "Secret", "db")
	vals, err := OpenSecret(st.Cipher(), stored.Spec)
	if err != nil || vals["password"].Reveal() != plain {
		t.Fatalf("open: %v", err)
	}

	// Applying the redacted form back keeps the values and changes nothing.
	shown := st.Redact(stored)
	res, err = st.Apply(ctx, []*Object{{Kind: "Secret", Name: "db", Spec: shown.Spec}}, ApplyOptions{})
	if err != nil || res[0].Action != "unchanged" {
		t.Fatalf("re-apply redacted: %v %+v", err, res)
	}
	// Re-applying the same plain value is unchanged too.
	res, err = st.Apply(ctx, []*Object{secretObj("db", map[string]string{"password": plain, "user": "app"})}, ApplyOptions{})
	if err != nil || res[0].Action != "unchanged" {
		t.Fatalf("re-apply same: %v %+v", err, res)
	}
	// Changing one key keeps the other.
	if _, err = st.Apply(ctx, []*Object{secretObj("db", map[string]string{"password": Redacted, "user": "other"})}, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	stored, _ = st.Get(ctx, "Secret", "db")
	vals, _ = OpenSecret(st.Cipher(), stored.Spec)
	if vals["password"].Reveal() != plain || vals["user"].Reveal() != "other" {
		t.Fatalf("values: password kept=%v user=%q", vals["password"].Reveal() == plain, vals["user"].Reveal())
	}
	// A redacted value for a key that has none is an error naming it.
	_, err = st.Apply(ctx, []*Object{secretObj("db", map[string]string{"token": Redacted})}, ApplyOptions{})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "spec.data.token" || fe.Object != "Secret/db" {
		t.Fatalf("redacted new key: %v", err)
	}
}

func TestSecretValidation(t *testing.T) {
	r := testRegistry()
	cases := map[string]string{
		"spec.data":         `{}`,
		"spec.data.bad key": `{"data": {"bad key": "v"}}`,
		"spec.extra":        `{"data": {"k": "v"}, "extra": 1}`,
	}
	for field, spec := range cases {
		err := r.Validate(&Object{Kind: "Secret", Name: "s", Spec: json.RawMessage(spec)})
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%s: got %v", spec, err)
		}
	}
	err := r.Validate(&Object{Kind: "Secret", Name: "s", Spec: json.RawMessage(`{"data": ["x"]}`)})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "spec.data" {
		t.Errorf("list for data: %v", err)
	}
}

func TestSecretValueNeverPrints(t *testing.T) {
	v := SecretValue(plain)
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	log.Info("m", "v", v)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("m", "v", v)
	js, _ := json.Marshal(map[string]any{"v": v})
	err := fmt.Errorf("connect with %v: %w", v, errors.New("refused"))
	for _, s := range []string{logs.String(), string(js), err.Error(), fmt.Sprint(v), fmt.Sprintf("%s %v %+v %#v %q", v, v, v, v, v)} {
		if strings.Contains(s, plain) {
			t.Fatalf("secret leaked: %s", s)
		}
	}
}

func TestKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k", "secret.key")
	c1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
	sealed, _ := c1.Seal([]byte(plain))
	c2, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := c2.Open(sealed); err != nil || string(pt) != plain {
		t.Fatalf("reload key: %v", err)
	}
	other, _ := NewAESCipher(bytes.Repeat([]byte{1}, 32))
	if _, err := other.Open(sealed); err == nil {
		t.Fatal("opened with the wrong key")
	}
	_ = os.WriteFile(path, []byte("not base64!!"), 0o600)
	if _, err := LoadOrCreateKey(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("bad key file: %v", err)
	}
}
