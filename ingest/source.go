package ingest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/floelake/floe/commit"
)

// ClientOpts turns the kafka section into franz-go options shared by every
// client floe makes (consumers, admin, the quickstart producer).
func ClientOpts(k KafkaConfig) ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(k.Brokers...),
		kgo.ClientID(k.ClientID),
	}
	if k.TLS.Enabled || k.TLS.CAFile != "" || k.TLS.CertFile != "" {
		tc, err := tlsConfig(k.TLS)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	switch strings.ToUpper(k.SASL.Mechanism) {
	case "":
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: k.SASL.Username, Pass: k.SASL.Password}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: k.SASL.Username, Pass: k.SASL.Password}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: k.SASL.Username, Pass: k.SASL.Password}.AsSha512Mechanism()))
	default:
		return nil, fmt.Errorf("kafka.sasl.mechanism: unsupported %q", k.SASL.Mechanism)
	}
	return opts, nil
}

func tlsConfig(t TLSConfig) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // opt-in by the operator
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka.tls.ca_file: no PEM certificates in %s", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls.cert_file/key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// startOffset is the configured start for partitions a table has no
// offsets for.
func startOffset(start string) kgo.Offset {
	switch start {
	case "latest":
		return kgo.NewOffset().AtEnd()
	case "earliest", "":
		return kgo.NewOffset().AtStart()
	}
	if t, ok := startTime(start); ok {
		return kgo.NewOffset().AfterMilli(t.UnixMilli())
	}
	return kgo.NewOffset().AtStart()
}

// seekPlan decides where each partition starts (docs/exactly-once.md, rules 1 and 4).
// Every output's table has a floor per partition: its committed offset, or,
// for a table with none, the configured start resolved to an offset
// (starts). The partition is consumed from the lowest floor, and a table
// takes a record only at or past its own floor. committed holds each
// output's offsets, in Outputs order; seekPlan returns the consumer's plan,
// the floors in the same order, and the seek position of each partition.
// prepare resolves a start for every partition (resolveStart retries until
// it has them all); a partition missing from starts anyway is read from the
// earliest offset with a floor of -1 (take everything) for the tables
// lacking offsets.
func seekPlan(partitions map[string][]int32, committed []commit.Offsets, starts map[topicPartition]int64) (map[string]map[int32]kgo.Offset, []commit.Offsets, map[topicPartition]int64) {
	plan := map[string]map[int32]kgo.Offset{}
	floors := make([]commit.Offsets, len(committed))
	for t := range floors {
		floors[t] = commit.Offsets{}
	}
	pos := map[topicPartition]int64{}
	for topic, ps := range partitions {
		plan[topic] = map[int32]kgo.Offset{}
		for _, p := range ps {
			tp := topicPartition{topic, p}
			seek, n := int64(0), 0
			for t := range committed {
				f, ok := committed[t].Get(topic, p)
				if !ok {
					f, ok = starts[tp]
				}
				if !ok {
					continue
				}
				floors[t].Set(topic, p, f)
				if n == 0 || f < seek {
					seek = f
				}
				n++
			}
			if n > 0 && n == len(committed) {
				plan[topic][p] = kgo.NewOffset().At(seek)
				pos[tp] = seek
			} else {
				plan[topic][p] = kgo.NewOffset().AtStart()
			}
		}
	}
	return plan, floors, pos
}

// resolveStart turns the configured start into concrete offsets now, so the
// pipeline is positioned when it reports ready, and a record produced after
// that is never skipped by a "latest" resolved later. Every partition in ends
// gets an offset: lookups that fail are retried (see listEvery).
func resolveStart(ctx context.Context, adm *kadm.Client, topics []string, start string, ends map[topicPartition]int64, wait func(error)) (map[topicPartition]int64, error) {
	switch start {
	case "earliest", "":
		return listEvery(ctx, slices.Collect(maps.Keys(ends)), "start offsets", adm.ListStartOffsets, wait)
	case "latest":
		return maps.Clone(ends), nil
	}
	t, ok := startTime(start)
	if !ok {
		return nil, fmt.Errorf("ingest: start %q is not earliest, latest or an RFC 3339 time", start)
	}
	after := func(ctx context.Context, topics ...string) (kadm.ListedOffsets, error) {
		return adm.ListOffsetsAfterMilli(ctx, t.UnixMilli(), topics...)
	}
	return listEvery(ctx, slices.Collect(maps.Keys(ends)), "offsets after "+start, after, wait)
}

// listEvery lists one offset for every partition in want, retrying the
// partitions whose lookup failed (a per-partition error: no leader yet, a
// leader moving, a broker restarting) with backoff until all are known or
// ctx ends. It never guesses: a partition left without a start would be
// read from wherever the consumer lands on a single node, and never
// assigned in a cluster. An error of the whole request is returned at once.
func listEvery(ctx context.Context, want []topicPartition, what string,
	list func(ctx context.Context, topics ...string) (kadm.ListedOffsets, error), wait func(error)) (map[topicPartition]int64, error) {
	out := make(map[topicPartition]int64, len(want))
	backoff := listRetryMin
	for {
		missing := map[string][]int32{}
		for _, tp := range want {
			if _, ok := out[tp]; !ok {
				missing[tp.topic] = append(missing[tp.topic], tp.partition)
			}
		}
		if len(missing) == 0 {
			return out, nil
		}
		listed, err := list(ctx, slices.Sorted(maps.Keys(missing))...)
		if err != nil {
			return nil, fmt.Errorf("ingest: list %s: %w", what, err)
		}
		var failed []error
		for topic, ps := range missing {
			for _, p := range ps {
				o, ok := listed.Lookup(topic, p)
				switch {
				case !ok:
					failed = append(failed, fmt.Errorf("topic %q partition %d: not in the answer", topic, p))
				case o.Err != nil:
					failed = append(failed, fmt.Errorf("topic %q partition %d: %w", topic, p, o.Err))
				default:
					out[topicPartition{topic, p}] = o.Offset
				}
			}
		}
		if len(failed) == 0 {
			return out, nil
		}
		err = fmt.Errorf("ingest: list %s: retrying in %s: %w", what, backoff, errors.Join(failed...))
		wait(err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("ingest: list %s: %w (last: %v)", what, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, listRetryMax)
	}
}

// Backoff between retries of offset lookups.
const (
	listRetryMin = 100 * time.Millisecond
	listRetryMax = 5 * time.Second
)

// startNewPartitionsAtEarliest: a partition that no table has offsets for,
// of a topic the pipeline already has offsets for, was added to the topic
// after the pipeline started. Everything in it arrived after that start, so
// it is read from its first offset whatever the configured start; "latest"
// would lose what was produced to it before floe noticed it.
//
// committed holds each output's offsets.
func startNewPartitionsAtEarliest(ctx context.Context, adm *kadm.Client, committed []commit.Offsets, starts map[topicPartition]int64, wait func(error)) error {
	var fresh []topicPartition
	for tp := range starts {
		partitionKnown, topicKnown := false, false
		for _, c := range committed {
			if _, ok := c.Get(tp.topic, tp.partition); ok {
				partitionKnown = true
			}
			if len(c[tp.topic]) > 0 {
				topicKnown = true
			}
		}
		if !partitionKnown && topicKnown {
			fresh = append(fresh, tp)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	first, err := listEvery(ctx, fresh, "start offsets of new partitions", adm.ListStartOffsets, wait)
	if err != nil {
		return err
	}
	maps.Copy(starts, first)
	return nil
}

// listPartitions returns every partition of the topics and their high
// watermarks. It waits (reporting through wait) for topics that do not exist
// yet, and fails at once on any other error (authentication, authorization,
// no broker), which the pipeline surfaces in its health and retries.
func listPartitions(ctx context.Context, adm *kadm.Client, topics []string, wait func(error)) (map[string][]int32, map[topicPartition]int64, error) {
	for {
		ends, err := adm.ListEndOffsets(ctx, topics...)
		if err != nil {
			return nil, nil, fmt.Errorf("ingest: list partitions of %v: %w", topics, err)
		}
		parts := map[string][]int32{}
		hwm := map[topicPartition]int64{}
		var missing error
		for _, t := range topics {
			if _, ok := ends[t]; !ok {
				missing = fmt.Errorf("topic %q does not exist yet", t)
			}
		}
		ends.Each(func(o kadm.ListedOffset) {
			if o.Err != nil {
				if errors.Is(o.Err, kerr.UnknownTopicOrPartition) {
					missing = fmt.Errorf("topic %q does not exist yet", o.Topic)
				} else if missing == nil {
					missing = fmt.Errorf("topic %q partition %d: %w", o.Topic, o.Partition, o.Err)
				}
				return
			}
			parts[o.Topic] = append(parts[o.Topic], o.Partition)
			hwm[topicPartition{o.Topic, o.Partition}] = o.Offset
		})
		if missing == nil {
			return parts, hwm, nil
		}
		wait(missing)
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("ingest: list partitions of %v: %w (last: %v)", topics, ctx.Err(), missing)
		case <-time.After(time.Second):
		}
	}
}

// dialCheck fails fast with a clear message when no broker is reachable.
func dialCheck(ctx context.Context, brokers []string) error {
	var last error
	for _, b := range brokers {
		d := net.Dialer{Timeout: 3 * time.Second}
		c, err := d.DialContext(ctx, "tcp", b)
		if err == nil {
			_ = c.Close()
			return nil
		}
		last = err
	}
	return fmt.Errorf("ingest: no Kafka broker reachable at %v: %w", brokers, last)
}

// Kinds of consumer errors, the kind label of
// floe_ingest_consumer_errors_total.
const (
	kindAuthorization  = "authorization"
	kindAuthentication = "authentication"
	kindUnknownTopic   = "unknown_topic"
	kindOutOfRange     = "offset_out_of_range"
	kindDataLoss       = "data_loss"
	kindTransient      = "transient"
	kindOther          = "other"
)

// ConsumerError is a failure consuming from Kafka that retrying in place
// cannot fix: it ends the run (the pipeline restarts from its tables'
// offsets after a backoff) and is the pipeline's health meanwhile, so
// /readyz says what is wrong.
type ConsumerError struct {
	// Kind is one of authorization, authentication, unknown_topic,
	// offset_out_of_range, data_loss, other.
	Kind string
	// Topic and Partition name the partition ("" and -1: the whole
	// connection).
	Topic     string
	Partition int32
	// What happened, and what the operator can do about it.
	What, Hint string
	Err        error
}

func (e *ConsumerError) Error() string {
	msg := "ingest: "
	if e.Topic != "" {
		msg += fmt.Sprintf("topic %q partition %d: ", e.Topic, e.Partition)
	}
	msg += e.What
	if e.Err != nil {
		msg += " (" + e.Err.Error() + ")"
	}
	if e.Hint != "" {
		msg += "; " + e.Hint
	}
	return msg
}

func (e *ConsumerError) Unwrap() error { return e.Err }

// classifyFetchErr puts an error the consumer reported in its kind.
func classifyFetchErr(err error) string {
	switch {
	case errors.As(err, new(*kgo.ErrDataLoss)):
		return kindDataLoss
	case errors.Is(err, kerr.OffsetOutOfRange):
		return kindOutOfRange
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.GroupAuthorizationFailed),
		errors.Is(err, kerr.ClusterAuthorizationFailed):
		return kindAuthorization
	case isAuthenticationErr(err):
		return kindAuthentication
	case errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.UnknownTopicID):
		return kindUnknownTopic
	case kerr.IsRetriable(err):
		return kindTransient
	}
	return kindOther
}

// isAuthenticationErr reports a connection Kafka refused during its set-up:
// a SASL failure, or a broker closing the connection at once, which franz-go
// reports as ErrFirstReadEOF with its guess (SASL or TLS expected).
func isAuthenticationErr(err error) bool {
	return errors.Is(err, kerr.SaslAuthenticationFailed) || errors.Is(err, kerr.IllegalSaslState) ||
		errors.Is(err, kerr.UnsupportedSaslMechanism) || errors.As(err, new(*kgo.ErrFirstReadEOF))
}

// consumerError describes a fatal fetch error of kind for the operator.
func consumerError(kind, topic string, partition int32, err error, group string) *ConsumerError {
	e := &ConsumerError{Kind: kind, Topic: topic, Partition: partition, Err: err}
	switch kind {
	case kindAuthorization:
		e.What = "Kafka refuses floe's principal"
		e.Hint = "grant it Describe and Read on the pipeline's topics"
		if group != "" {
			e.Hint += fmt.Sprintf(" (and Read on consumer group %q, where lag is reported)", group)
		}
	case kindAuthentication:
		e.What = "Kafka refused the connection's authentication"
		e.Hint = "check kafka.sasl (mechanism, username, password) and kafka.tls against the brokers' listeners"
	case kindUnknownTopic:
		e.What = "the partition no longer exists (the topic was deleted, or lost)"
		e.Hint = "recreate the topic or remove it from the pipeline's topics; the pipeline waits for its topics when it restarts"
	default:
		e.What = "the consumer failed"
		e.Hint = "the pipeline restarts from its tables' offsets"
	}
	return e
}

// unknownTopicGrace is how long a partition may be reported unknown before
// the run ends: right after a topic is created (or a leader moves), brokers
// briefly answer that they do not know it.
const unknownTopicGrace = 5 * time.Second

// fetchState is the poll loop's view of its partitions: where each one is
// read from next, and since when it has been reported unknown.
type fetchState struct {
	pos          map[topicPartition]int64
	unknownSince map[topicPartition]time.Time
	watch        *connWatch
}

func newFetchState(pos map[topicPartition]int64) *fetchState {
	return &fetchState{pos: maps.Clone(pos), unknownSince: map[topicPartition]time.Time{}, watch: &connWatch{}}
}

// connWatch is a franz-go hook that notices connections Kafka refuses for
// their authentication. The client retries those on its own and reports
// nothing to the poll loop: without the hook, a pipeline whose credentials
// were revoked while it ran would wait forever and look ready.
type connWatch struct {
	mu struct {
		sync.Mutex
		err  error
		wake context.CancelFunc
	}
}

var _ kgo.HookBrokerConnect = (*connWatch)(nil)

// OnBrokerConnect records an authentication failure and wakes the poll.
func (w *connWatch) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err == nil || !isAuthenticationErr(err) {
		return
	}
	w.mu.Lock()
	if w.mu.err == nil {
		w.mu.err = fmt.Errorf("broker %s:%d: %w", meta.Host, meta.Port, err)
	}
	wake := w.mu.wake
	w.mu.Unlock()
	if wake != nil {
		wake()
	}
}

// pollContext is ctx, cancelled early when a connection is refused.
func (w *connWatch) pollContext(ctx context.Context) (context.Context, context.CancelFunc) {
	pctx, cancel := context.WithCancel(ctx)
	w.mu.Lock()
	w.mu.wake = cancel
	failed := w.mu.err != nil
	w.mu.Unlock()
	if failed {
		cancel()
	}
	return pctx, func() {
		w.mu.Lock()
		w.mu.wake = nil
		w.mu.Unlock()
		cancel()
	}
}

// failure returns the authentication failure seen, if any.
func (w *connWatch) failure() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.err
}
