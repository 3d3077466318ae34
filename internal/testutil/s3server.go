// Package testutil holds helpers shared by floe's tests. They start real
// dependencies (an S3-compatible server) rather than fakes, because what
// breaks in production is usually the protocol detail a fake leaves out:
// request signing, path-style addressing, multipart uploads, ranged reads.
//
// Helpers take a testing.TB, register their own cleanup, and skip (or, in
// CI, fail) when an external binary they need is missing.
package testutil

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	icebergio "github.com/apache/iceberg-go/io"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// VersitygwInstall is the command that installs the S3 server StartS3 runs.
const VersitygwInstall = "go install github.com/versity/versitygw/cmd/versitygw@latest"

const (
	s3StartTimeout = 30 * time.Second
	s3StartTries   = 5
)

// S3Server is a running versitygw instance serving one empty bucket from a
// temporary directory. It lives until the test that started it ends.
type S3Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	Region    string
	AccessKey string
	SecretKey string
	Bucket    string

	root string // posix backend directory; buckets are its subdirectories
	proc *gwProcess
}

// StartS3 starts versitygw on a free 127.0.0.1 port with a posix backend in
// t.TempDir(), waits until it answers, creates a bucket, and kills the
// server when the test ends.
//
// When the binary is missing it skips the test, naming the install
// command, unless the environment variable CI is non-empty: then it fails,
// because CI is where these tests must not silently disappear.
func StartS3(t testing.TB) *S3Server {
	t.Helper()
	bin, err := findVersitygw()
	if err != nil {
		msg := fmt.Sprintf("S3 tests need versitygw: %v; install it with: %s", err, VersitygwInstall)
		if os.Getenv("CI") != "" {
			t.Fatal(msg + " (CI is set, so this test must not be skipped)")
		}
		t.Skip(msg)
	}

	dir := t.TempDir()
	s := &S3Server{
		Region:    "us-east-1",
		AccessKey: "floetest",
		SecretKey: "floetest-secret-" + randomHex(8),
		Bucket:    "floe-test",
		root:      filepath.Join(dir, "data"),
	}
	// Object metadata goes to a sidecar directory instead of extended
	// attributes, which tmpfs and some container filesystems lack;
	// versitygw refuses to start on those otherwise.
	meta := filepath.Join(dir, "meta")
	for _, d := range []string{s.root, meta} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatalf("testutil: %v", err)
		}
	}

	// Picking a port by listening on :0 and closing it races with every
	// other process on the machine, so a bind failure gets a fresh port.
	for try := 1; ; try++ {
		p, err := startGateway(bin, s, meta)
		if p != nil {
			// Registered before readiness is known so a failed start
			// still leaves no process behind and shows its output.
			t.Cleanup(func() {
				p.stop()
				if t.Failed() {
					t.Logf("versitygw output (%s):\n%s", p.addr, p.output())
				}
			})
		}
		if err == nil {
			s.proc = p
			s.Endpoint = "http://" + p.addr
			break
		}
		if errors.Is(err, errAddrInUse) && try < s3StartTries {
			t.Logf("testutil: versitygw port %s taken, retrying", p.addr)
			continue
		}
		t.Fatalf("testutil: start versitygw: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), s3StartTimeout)
	defer cancel()
	if _, err := s.client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.Bucket)}); err != nil {
		t.Fatalf("testutil: create bucket %q on versitygw: %v", s.Bucket, err)
	}
	return s
}

// Props returns iceberg-go FileIO properties for the server. Path-style
// addressing is what iceberg-go picks for any custom endpoint; it is set
// explicitly because virtual-host addressing would resolve
// <bucket>.127.0.0.1, which goes nowhere.
func (s *S3Server) Props() map[string]string {
	return map[string]string{
		icebergio.S3EndpointURL:            s.Endpoint,
		icebergio.S3Region:                 s.Region,
		icebergio.S3AccessKeyID:            s.AccessKey,
		icebergio.S3SecretAccessKey:        s.SecretKey,
		icebergio.S3ForceVirtualAddressing: "false",
	}
}

// Warehouse returns "s3://<bucket>/<prefix>", or "s3://<bucket>" for an
// empty prefix.
func (s *S3Server) Warehouse(prefix string) string {
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		return "s3://" + s.Bucket
	}
	return "s3://" + s.Bucket + "/" + prefix
}

// client is a plain SDK client for what iceberg-go's FileIO cannot do,
// such as creating the bucket. It is built from explicit options rather
// than the default config chain so a developer's ~/.aws or AWS_* variables
// cannot leak into tests.
func (s *S3Server) client() *s3.Client {
	return s3.New(s3.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
}

var errAddrInUse = errors.New("address already in use")

// gwProcess is one versitygw process and its combined output.
type gwProcess struct {
	addr string
	cmd  *exec.Cmd
	out  lockedBuffer
	done chan struct{} // closed when the process has exited
	err  error         // exit status, valid after done
}

func (p *gwProcess) output() string { return p.out.String() }

func (p *gwProcess) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// startGateway starts versitygw on a fresh port and waits until it serves.
// It returns the process even on error (unless it never started) so the
// caller can clean it up and log its output, which errors leave out.
func startGateway(bin string, s *S3Server, meta string) (*gwProcess, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	// A health path unique to this instance makes sure readiness is
	// reported by our process, not by whatever else grabbed the port.
	health := "/floe-health-" + randomHex(8)
	p := &gwProcess{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), done: make(chan struct{})}
	p.cmd = exec.Command(bin,
		"--port", p.addr,
		"--region", s.Region,
		"--health", health,
		"--quiet", // no per-request access log
		"posix", "--sidecar", meta, s.root)
	p.cmd.Env = append(gatewayEnv(),
		"ROOT_ACCESS_KEY="+s.AccessKey,
		"ROOT_SECRET_KEY="+s.SecretKey,
	)
	p.cmd.Stdout = &p.out
	p.cmd.Stderr = &p.out
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", bin, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()

	url := "http://" + p.addr + health
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(s3StartTimeout)
	for {
		select {
		case <-p.done:
			if strings.Contains(p.output(), "address already in use") {
				return p, fmt.Errorf("%s: %w", p.addr, errAddrInUse)
			}
			return p, fmt.Errorf("versitygw exited before serving: %v", p.err)
		default:
		}
		if resp, err := hc.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		if time.Now().After(deadline) {
			return p, fmt.Errorf("versitygw did not answer GET %s within %v", url, s3StartTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// gatewayEnv is the parent environment without versitygw's own settings
// (VGW_*, ROOT_*), which would otherwise silently reconfigure the server.
func gatewayEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "VGW_") || strings.HasPrefix(kv, "ROOT_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// findVersitygw looks where `go install` puts binaries as well as on PATH,
// since GOPATH/bin is often not on a developer's PATH.
func findVersitygw() (string, error) {
	name := "versitygw"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	var dirs []string
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		// Not trimmed as a whole: an empty GOBIN is an empty first line.
		lines := strings.Split(string(out), "\n")
		if gobin := strings.TrimSpace(lines[0]); gobin != "" {
			dirs = append(dirs, gobin)
		}
		if len(lines) > 1 {
			for _, gp := range filepath.SplitList(strings.TrimSpace(lines[1])) {
				dirs = append(dirs, filepath.Join(gp, "bin"))
			}
		}
	} else if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin")) // go's default GOPATH
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is not on PATH nor in %v", name, dirs)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// lockedBuffer collects process output while tests read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
