package datascript

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des" //nolint:gosec // Avi's CIPHER_3DES
	"crypto/md5" //nolint:gosec // avi.utils.md5_hash
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // avi.utils.sha1_hash
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"

	lua "github.com/yuin/gopher-lua"
)

// defaultIV is Avi's default initialisation vector.
const defaultIV = "0123456789012345"

// maxRandBytes bounds avi.utils.rand_bytes.
const maxRandBytes = 4096

func (st *state) utilsLib() *lua.LTable {
	t := st.L.NewTable()
	const p = "avi.utils."
	st.bind(t, p, "base64_encode", mAll, func(st *state, L *lua.LState) int {
		L.Push(lua.LString(base64.StdEncoding.EncodeToString([]byte(L.CheckString(1)))))
		return 1
	})
	st.bind(t, p, "base64_decode", mAll, func(st *state, L *lua.LState) int {
		b, err := base64.StdEncoding.DecodeString(L.CheckString(1))
		if err != nil {
			L.Push(lua.LNil)
			return 1
		}
		L.Push(lua.LString(b))
		return 1
	})
	// The hashes are lower-case hex, as Avi's samples use them in headers
	// and cut them with string.sub.
	st.bind(t, p, "sha1_hash", mAll, func(st *state, L *lua.LState) int {
		sum := sha1.Sum([]byte(L.CheckString(1))) //nolint:gosec // Avi's API
		L.Push(lua.LString(hex.EncodeToString(sum[:])))
		return 1
	})
	st.bind(t, p, "md5_hash", mAll, func(st *state, L *lua.LState) int {
		sum := md5.Sum([]byte(L.CheckString(1))) //nolint:gosec // Avi's API
		L.Push(lua.LString(hex.EncodeToString(sum[:])))
		return 1
	})
	st.bind(t, p, "uri_decode", mAll, func(st *state, L *lua.LState) int {
		L.Push(lua.LString(decode(L.CheckString(1))))
		return 1
	})
	st.bind(t, p, "rand_bytes", mAll, func(st *state, L *lua.LState) int {
		n := L.CheckInt(1)
		if n < 0 || n > maxRandBytes {
			L.ArgError(1, fmt.Sprintf("must be 0 to %d", maxRandBytes))
		}
		b := make([]byte, n)
		_, _ = rand.Read(b)
		L.Push(lua.LString(b))
		return 1
	})
	return t
}

func (st *state) cryptoLib() *lua.LTable {
	t := st.L.NewTable()
	st.bind(t, "avi.crypto.", "encrypt", mAll, func(st *state, L *lua.LState) int { return cryptoRun(L, true) })
	st.bind(t, "avi.crypto.", "decrypt", mAll, func(st *state, L *lua.LState) int { return cryptoRun(L, false) })
	return t
}

// cryptoRun is avi.crypto.encrypt and decrypt (data, key [, iv [, algo]]):
// CBC with PKCS#7 padding; AES-128/192/256 by the key's length, or 3DES
// with a 24-byte key. A bad key or IV is a Lua error; data that does not
// decrypt gives nil.
func cryptoRun(L *lua.LState, encrypt bool) int {
	data := []byte(L.CheckString(1))
	key := []byte(L.CheckString(2))
	iv := []byte(L.OptString(3, ""))
	algo := L.OptInt(4, cipherAES)
	out, err := cbc(encrypt, data, key, iv, algo)
	if errors.Is(err, errBadPadding) {
		L.Push(lua.LNil)
		return 1
	}
	if err != nil {
		L.RaiseError("avi.crypto: %s", err.Error())
	}
	L.Push(lua.LString(out))
	return 1
}

var errBadPadding = errors.New("bad padding")

func cbc(encrypt bool, data, key, iv []byte, algo int) ([]byte, error) {
	var block cipher.Block
	var err error
	switch algo {
	case cipherAES:
		block, err = aes.NewCipher(key)
	case cipher3DES:
		block, err = des.NewTripleDESCipher(key) //nolint:gosec // Avi's CIPHER_3DES
	default:
		return nil, fmt.Errorf("unknown cipher %d", algo)
	}
	if err != nil {
		return nil, fmt.Errorf("key of %d bytes: %w", len(key), err)
	}
	bs := block.BlockSize()
	if len(iv) == 0 {
		iv = []byte(defaultIV)[:bs]
	}
	if len(iv) != bs {
		return nil, fmt.Errorf("IV must be %d bytes, got %d", bs, len(iv))
	}
	if encrypt {
		pad := bs - len(data)%bs
		buf := append(bytes.Clone(data), bytes.Repeat([]byte{byte(pad)}, pad)...)
		cipher.NewCBCEncrypter(block, iv).CryptBlocks(buf, buf)
		return buf, nil
	}
	if len(data) == 0 || len(data)%bs != 0 {
		return nil, errBadPadding
	}
	buf := bytes.Clone(data)
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(buf, buf)
	pad := int(buf[len(buf)-1])
	if pad == 0 || pad > bs || pad > len(buf) || !bytes.Equal(buf[len(buf)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) {
		return nil, errBadPadding
	}
	return buf[:len(buf)-pad], nil
}
