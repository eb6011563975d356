package datascript

import (
	"crypto/sha1" //nolint:gosec // certificate fingerprints are SHA-1 in Avi
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

func (st *state) sslLib() *lua.LTable {
	t := st.L.NewTable()
	const p = "avi.ssl."
	st.bind(t, p, "protocol", mAll, func(st *state, L *lua.LState) int {
		if st.t.TLS == nil || st.t.TLS.Protocol == "" {
			L.Push(lua.LString("unknown"))
			return 1
		}
		L.Push(lua.LString(st.t.TLS.Protocol))
		return 1
	})
	st.bind(t, p, "cipher", mAll, func(st *state, L *lua.LState) int {
		if st.t.TLS == nil {
			L.Push(lua.LNil)
			return 1
		}
		if !L.ToBool(1) {
			return pushStringOrNil(L, st.t.TLS.Cipher)
		}
		d := st.t.TLS.CipherDetail
		if d == "" {
			d = st.t.TLS.Cipher + " " + st.t.TLS.Protocol
		}
		L.Push(lua.LString(d))
		return 1
	})
	st.bind(t, p, "server_name", mAll, func(st *state, L *lua.LState) int {
		if st.t.TLS == nil {
			L.Push(lua.LNil)
			return 1
		}
		return pushStringOrNil(L, st.t.TLS.ServerName)
	})
	st.bind(t, p, "client_cert", mAll, sslClientCert)
	return t
}

// sslClientCert returns the fields asked for, one result each (the PEM
// with no argument), or nil without a client certificate.
func sslClientCert(st *state, L *lua.LState) int {
	ti := st.t.TLS
	if ti == nil || ti.ClientCertPEM == "" {
		L.Push(lua.LNil)
		return 1
	}
	n := max(L.GetTop(), 1)
	for i := 1; i <= n; i++ {
		field := clientCert
		if s, ok := L.Get(i).(lua.LString); ok {
			field = string(s)
			if !strings.HasPrefix(field, "avi.") {
				field = "avi." + field
			}
		}
		switch field {
		case clientCert:
			// As in Avi (and nginx's $ssl_client_cert), each line but the
			// first starts with a tab.
			pemText := strings.TrimRight(ti.ClientCertPEM, "\n")
			L.Push(lua.LString(strings.ReplaceAll(pemText, "\n", "\n\t")))
		case clientCertFinger:
			L.Push(lua.LString(ti.ClientCertFingerprint))
		case clientCertSubject:
			L.Push(lua.LString(ti.ClientCertSubject))
		case clientCertIssuer:
			L.Push(lua.LString(ti.ClientCertIssuer))
		case clientCertSerial:
			L.Push(lua.LString(ti.ClientCertSerial))
		default:
			L.ArgError(i, "must be one of the avi.CLIENT_CERT constants")
		}
	}
	return n
}

// NewTLSInfo describes a TLS connection for the scripts: protocol and
// cipher in OpenSSL's names, the SNI and the client certificate's fields.
func NewTLSInfo(cs *tls.ConnectionState) *TLSInfo {
	ti := &TLSInfo{
		Protocol:   tlsVersions[cs.Version],
		ServerName: cs.ServerName,
		Cipher:     opensslCipher(cs.CipherSuite),
	}
	if ti.Protocol == "" {
		ti.Protocol = "unknown"
	}
	if len(cs.PeerCertificates) > 0 {
		setClientCert(ti, cs.PeerCertificates[0])
	}
	return ti
}

var tlsVersions = map[uint16]string{
	tls.VersionTLS10: "TLSv1", tls.VersionTLS11: "TLSv1.1", tls.VersionTLS12: "TLSv1.2", tls.VersionTLS13: "TLSv1.3",
}

// opensslNames are the OpenSSL names of the suites Go offers.
var opensslNames = map[uint16]string{
	tls.TLS_AES_128_GCM_SHA256:                        "TLS_AES_128_GCM_SHA256",
	tls.TLS_AES_256_GCM_SHA384:                        "TLS_AES_256_GCM_SHA384",
	tls.TLS_CHACHA20_POLY1305_SHA256:                  "TLS_CHACHA20_POLY1305_SHA256",
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256:         "ECDHE-RSA-AES128-GCM-SHA256",
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:         "ECDHE-RSA-AES256-GCM-SHA384",
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256:       "ECDHE-ECDSA-AES128-GCM-SHA256",
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384:       "ECDHE-ECDSA-AES256-GCM-SHA384",
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256:   "ECDHE-RSA-CHACHA20-POLY1305",
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: "ECDHE-ECDSA-CHACHA20-POLY1305",
	tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA:            "ECDHE-RSA-AES128-SHA",
	tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA:            "ECDHE-RSA-AES256-SHA",
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA:          "ECDHE-ECDSA-AES128-SHA",
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA:          "ECDHE-ECDSA-AES256-SHA",
	tls.TLS_RSA_WITH_AES_128_GCM_SHA256:               "AES128-GCM-SHA256",
	tls.TLS_RSA_WITH_AES_256_GCM_SHA384:               "AES256-GCM-SHA384",
	tls.TLS_RSA_WITH_AES_128_CBC_SHA:                  "AES128-SHA",
	tls.TLS_RSA_WITH_AES_256_CBC_SHA:                  "AES256-SHA",
}

func opensslCipher(id uint16) string {
	if n, ok := opensslNames[id]; ok {
		return n
	}
	return tls.CipherSuiteName(id)
}

func setClientCert(ti *TLSInfo, c *x509.Certificate) {
	ti.ClientCertPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	ti.ClientCertSubject = onelineDN(c.Subject)
	ti.ClientCertIssuer = onelineDN(c.Issuer)
	ti.ClientCertSerial = strings.ToUpper(c.SerialNumber.Text(16))
	sum := sha1.Sum(c.Raw) //nolint:gosec // fingerprint, as Avi gives it
	ti.ClientCertFingerprint = hex.EncodeToString(sum[:])
	ti.ClientCertCommonName = c.Subject.CommonName
}

var dnShort = map[string]string{
	"2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O", "2.5.4.11": "OU",
	"2.5.4.5": "serialNumber", "1.2.840.113549.1.9.1": "emailAddress", "0.9.2342.19200300.100.1.25": "DC",
}

// onelineDN writes a name as OpenSSL's one-line form: /C=US/O=foo/CN=bar.
func onelineDN(n pkix.Name) string {
	var b strings.Builder
	atvs := n.Names
	if len(atvs) == 0 {
		for _, rdn := range n.ToRDNSequence() {
			atvs = append(atvs, rdn...)
		}
	}
	{
		for _, atv := range atvs {
			b.WriteByte('/')
			if s, ok := dnShort[atv.Type.String()]; ok {
				b.WriteString(s)
			} else {
				b.WriteString(atv.Type.String())
			}
			b.WriteByte('=')
			b.WriteString(attrValue(atv))
		}
	}
	return b.String()
}

func attrValue(atv pkix.AttributeTypeAndValue) string {
	if s, ok := atv.Value.(string); ok {
		return s
	}
	if b, err := asn1.Marshal(atv.Value); err == nil {
		return "#" + hex.EncodeToString(b)
	}
	return fmt.Sprint(atv.Value)
}
