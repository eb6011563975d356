package datascript

import (
	"encoding/base64"
	"testing"

	"github.com/vigilhq/vigil/dataplane/spec"
)

// opensslVector is, from
//
//	printf 'The quick brown fox jumps over the lazy dog.' | openssl enc -aes-256-cbc \
//	  -K 3031323334353637383930313233343536373839303132333435363738393031 \
//	  -iv 30313233343536373839303132333435 | base64 -w0
//
// (key "01234567890123456789012345678901", Avi's default IV
// "0123456789012345").
const opensslVector = "4G9jpxHot6qflEAQfUaAoReZQ4DqMdKimblTAtQ5uXAjRS2CWN3gR8pgytO33nj4"

func TestCryptoKnownAnswer(t *testing.T) {
	got, err := cbc(true, []byte("The quick brown fox jumps over the lazy dog."), []byte("01234567890123456789012345678901"), nil, cipherAES)
	if err != nil {
		t.Fatal(err)
	}
	if base64.StdEncoding.EncodeToString(got) != opensslVector {
		t.Errorf("encrypt = %s, want %s", base64.StdEncoding.EncodeToString(got), opensslVector)
	}
}

func TestCrypto(t *testing.T) {
	runCases(t, []luaCase{
		{name: "AES-256 default IV against openssl", src: `
local key = "01234567890123456789012345678901"
local value = "The quick brown fox jumps over the lazy dog."
local enc = avi.crypto.encrypt(value, key)
eq(avi.utils.base64_encode(enc), "` + opensslVector + `")
eq(avi.crypto.decrypt(enc, key), value)`},
		{name: "AES-128 and 192 with an IV", src: `
for _, key in ipairs({"0123456789abcdef", "0123456789abcdef01234567"}) do
  local enc = avi.crypto.encrypt("x", key, "abcdefghijklmnop", avi.CIPHER_AES)
  eq(#enc, 16); eq(avi.crypto.decrypt(enc, key, "abcdefghijklmnop", avi.CIPHER_AES), "x")
end`},
		{name: "3DES", src: `
local key = "0123456789abcdef01234567"
local enc = avi.crypto.encrypt("hello 3des", key, "12345678", avi.CIPHER_3DES)
eq(#enc, 16); eq(avi.crypto.decrypt(enc, key, "12345678", avi.CIPHER_3DES), "hello 3des")
eq(avi.crypto.decrypt(avi.crypto.encrypt("d", key, nil, avi.CIPHER_3DES), key, nil, avi.CIPHER_3DES), "d")`},
		{name: "wrong key decrypts to nil", src: `
local enc = avi.crypto.encrypt("secret", "01234567890123456789012345678901")
local d = avi.crypto.decrypt(enc, "x1234567890123456789012345678901")
if d == "secret" then error("decrypted with the wrong key") end`},
		{name: "bad key length is an error", src: `eq(pcall(avi.crypto.encrypt, "x", "short"), false)`},
	})
	_ = spec.EvtHTTPReq
}
