package actions

import (
	"crypto/tls"
	"testing"

	"github.com/vigilhq/vigil/vigiltest"
)

// loopbackTLS makes a self-signed certificate for 127.0.0.1 and returns a
// server config that presents it and a client config that trusts it (and
// nothing else), without a ServerName.
func loopbackTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	certPEM, keyPEM, roots := vigiltest.SelfSigned(t)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	server = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	client = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	return server, client
}
