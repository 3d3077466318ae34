package ingest_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/internal/conf"
)

// running is a pipeline running in the background, as a single node runs
// it.
type running struct {
	t     *testing.T
	pl    *ingest.Pipeline
	stopF func() error
	once  sync.Once
}

func (h *harness) startRunning(p ingest.PipelineConfig) *running {
	h.t.Helper()
	if p.CommitInterval == 0 {
		p.CommitInterval = conf.Duration(100 * time.Millisecond)
	}
	if len(p.Schema) == 0 {
		p.Schema = []ingest.Column{{Name: "id", Type: "long", Required: true}}
	}
	pl, stop := h.start(p, 0)
	r := &running{t: h.t, pl: pl, stopF: stop}
	h.t.Cleanup(r.stop)
	return r
}

func (r *running) stop() {
	r.once.Do(func() {
		done := make(chan struct{})
		go func() { defer close(done); _ = r.stopF() }()
		select {
		case <-done:
		case <-time.After(2 * time.Minute):
			r.t.Error("pipeline did not stop")
		}
	})
}

// unhealthy waits until the pipeline reports a ConsumerError and returns it.
func (r *running) unhealthy() *ingest.ConsumerError {
	r.t.Helper()
	var ce *ingest.ConsumerError
	for deadline := time.Now().Add(60 * time.Second); !errors.As(r.pl.Healthy(), &ce); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			r.t.Fatalf("no consumer error reported; health: %v", r.pl.Healthy())
		}
	}
	return ce
}

func (h *harness) consumerErrors(kind string) float64 {
	return h.metrics.Sum("floe_ingest_consumer_errors_total", "pipeline", "events", "kind", kind)
}

// TestConsumerErrorsTurnReadinessRed: fetch errors that retrying in place
// cannot fix end the run with an error naming the partition, what happened
// and what to do, are counted, and are the pipeline's health (/readyz).
func TestConsumerErrorsTurnReadinessRed(t *testing.T) {
	for _, tc := range []struct {
		kind string
		err  *kerr.Error
		says []string
	}{
		{"authorization", kerr.TopicAuthorizationFailed, []string{`topic "events" partition 1`, "refuses floe's principal", "grant it Describe and Read"}},
		{"unknown_topic", kerr.UnknownTopicOrPartition, []string{`topic "events" partition 1`, "no longer exists", "recreate the topic"}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			h := newHarness(t, nil, ingest.KafkaConfig{})
			h.produce(`{"id": 1}`, `{"id": 2}`, `{"id": 3}`)
			h.cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Topic: "events", Partitions: []int32{1}, Err: tc.err, Count: -1})
			before := h.consumerErrors(tc.kind)
			r := h.startRunning(ingest.PipelineConfig{})
			ce := r.unhealthy()
			require.Equal(t, tc.kind, ce.Kind)
			require.ErrorIs(t, ce, tc.err)
			for _, s := range tc.says {
				require.Contains(t, ce.Error(), s)
			}
			require.Greater(t, h.consumerErrors(tc.kind), before)
		})
	}
}

// TestTransientFetchErrorsAreCountedAndRetried: an error the client retries
// shows in the metric and costs nothing else.
func TestTransientFetchErrorsAreCountedAndRetried(t *testing.T) {
	h := newHarness(t, nil, ingest.KafkaConfig{})
	var vals []string
	for i := range 9 {
		vals = append(vals, fmt.Sprintf(`{"id": %d}`, i))
	}
	h.produce(vals...)
	h.cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Topic: "events", Partitions: []int32{2}, Err: kerr.NotLeaderForPartition, Count: 3})
	before := h.consumerErrors("transient")
	h.run(ingest.PipelineConfig{Schema: []ingest.Column{{Name: "id", Type: "long", Required: true}}}, 9)
	require.EqualValues(t, 9, h.rows("ns.events"))
	require.GreaterOrEqual(t, h.consumerErrors("transient")-before, float64(1))
}

// TestRevokedCredentialsTurnReadinessRed: credentials Kafka stops accepting
// while floe runs (the client re-authenticates, and fails) end the run with
// an authentication error instead of a silent wait.
func TestRevokedCredentialsTurnReadinessRed(t *testing.T) {
	h := newHarness(t, []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("PLAIN", "floe", "s3cret"),
		kfake.BrokerConfigs(map[string]string{"connections.max.reauth.ms": "1000"})},
		ingest.KafkaConfig{SASL: ingest.SASLConfig{Mechanism: "PLAIN", Username: "floe", Password: "s3cret"}})
	h.produce(`{"id": 1}`, `{"id": 2}`, `{"id": 3}`)
	before := h.consumerErrors("authentication")
	r := h.startRunning(ingest.PipelineConfig{})
	require.Eventually(t, func() bool { return r.pl.Stats().Committed == 3 }, 60*time.Second, 10*time.Millisecond)
	h.cluster.ControlKey(int16(kmsg.SASLAuthenticate), func(req kmsg.Request) (kmsg.Response, error, bool) {
		h.cluster.KeepControl()
		resp := req.(*kmsg.SASLAuthenticateRequest).ResponseKind().(*kmsg.SASLAuthenticateResponse)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := "revoked"
		resp.ErrorMessage = &msg
		return resp, nil, true
	})
	ce := r.unhealthy()
	require.Equal(t, "authentication", ce.Kind)
	require.Contains(t, ce.Error(), "check kafka.sasl")
	require.Greater(t, h.consumerErrors("authentication"), before)
}
