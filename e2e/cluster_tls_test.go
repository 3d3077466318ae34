package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/floelake/floe/cluster"
	"github.com/floelake/floe/internal/gen"
)

// TestClusterTLS runs two members whose raft transport and cluster API use
// mutual TLS (cluster.tls with a CA): they form the cluster, share the
// partitions and commit everything exactly once; `floe cluster status`
// reaches them with the configuration's certificate and is refused
// without one.
func TestClusterTLS(t *testing.T) {
	const topic = "clicks"
	broker, s, r := newLocalClusterRig(t, topic, 4, 2)
	r.setTLS(writeTestPKI(t, s.Dir))
	cfg := r.config()
	cat := openCatalog(t, cfg)

	r.startAll()
	r.waitSpread(time.Minute, "n1", "n2")
	var stats gen.ProducerStats
	if err := produce(context.Background(), newProducer(t, broker), topic, 20_000, 0, 61, &stats); err != nil {
		t.Fatalf("produce: %v", err)
	}
	r.waitCommitted(cat, mustEndOffsets(t, broker, topic), 2*time.Minute)

	n2 := r.member("n2")
	out, err := exec.Command(r.Bin(), "cluster", "status", "--config", n2.ConfigPath, "--json").CombinedOutput()
	if err != nil {
		t.Fatalf("floe cluster status over TLS: %v\n%s", err, out)
	}
	var st cluster.Status
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("status JSON: %v\n%s", err, out)
	}
	if len(st.Members) != 2 || st.LeaderID == "" {
		t.Fatalf("status over TLS: want 2 members and a leader, got %+v", st)
	}
	// Without a certificate the API refuses the connection.
	out, err = exec.Command(r.Bin(), "cluster", "status", "--addr", n2.APIAddr(), "--timeout", "3s").CombinedOutput()
	if err == nil || !bytes.Contains(out, []byte("unreachable")) {
		t.Fatalf("status without TLS should fail as unreachable; err %v, output:\n%s", err, out)
	}
	r.stopAll()
	checkExactlyOnce(t, cfg, producedOf(&stats))
}

// writeTestPKI writes a CA and one certificate for 127.0.0.1 signed by it
// (members share the certificate: it is valid as server and client).
func writeTestPKI(t *testing.T, dir string) cluster.TLSConfig {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "floe test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "floe member"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	out := cluster.TLSConfig{
		CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "member.pem"), KeyFile: filepath.Join(dir, "member-key.pem"),
	}
	for path, block := range map[string]*pem.Block{
		out.CAFile:   {Type: "CERTIFICATE", Bytes: caDER},
		out.CertFile: {Type: "CERTIFICATE", Bytes: der},
		out.KeyFile:  {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return out
}
