package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/raydeploy/sdk/raydeploy/api"
)

type certKey struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
}

func newCert(t *testing.T, cn string, parent *certKey, server bool) *certKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	signer, signKey := tmpl, key
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.KeyUsage = true, true, x509.KeyUsageCertSign
	} else {
		signer, signKey = parent.cert, parent.key
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		if server {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &certKey{cert: c, key: key, der: der}
}

func (c *certKey) write(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	kb, _ := x509.MarshalECPrivateKey(c.key)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return
}

// TestMutualTLS serves with --client-ca: a client without a certificate is
// refused in the handshake; one with a certificate and a token is served.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newCert(t, "test CA", nil, false)
	caFile, _ := ca.write(t, dir, "ca")
	srvCert, srvKey := newCert(t, "server", ca, true).write(t, dir, "server")
	client := newCert(t, "client", ca, false)
	tokens := filepath.Join(dir, "tokens.json")
	tok, err := api.CreateToken(tokens, "ops", api.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		done <- run(ctx, []string{"--config", "../../raydeploy/testdata/cluster.yaml", "--state-dir", filepath.Join(dir, "state"),
			"--tokens", tokens, "--listen", "127.0.0.1:0", "--tls-cert", srvCert, "--tls-key", srvKey, "--client-ca", caFile},
			&bytes.Buffer{}, &stderr, ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case code := <-done:
		t.Fatalf("server exited %d: %s", code, stderr.String())
	}
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("server exit %d: %s", code, stderr.String())
		}
	}()
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	get := func(certs []tls.Certificate) (*http.Response, error) {
		cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: certs}}}
		req, _ := http.NewRequest("GET", "https://"+addr+"/api/v1/whoami", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		return cl.Do(req)
	}
	if resp, err := get(nil); err == nil {
		resp.Body.Close()
		t.Fatalf("served a client without a certificate: %d", resp.StatusCode)
	}
	resp, err := get([]tls.Certificate{{Certificate: [][]byte{client.der}, PrivateKey: client.key}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("client with certificate and token: %d", resp.StatusCode)
	}
}
