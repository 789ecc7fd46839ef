package api

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Webhook is an HTTP endpoint told about approvals pending, approvals decided
// and runs finished. The body is JSON; the header X-Raydeploy-Signature is
// "sha256=" and the hex HMAC-SHA256 of the body with Secret, and
// X-Raydeploy-Timestamp the Unix time it was signed at (also in the body).
// Deliveries are retried with exponential backoff and never hold up a run:
// when the delivery queue is full the delivery is dropped and logged.
type Webhook struct {
	// URL receives POST requests.
	URL string
	// Secret keys the HMAC signature. Required.
	Secret []byte
	// Events limits the event types sent (default: approval.pending,
	// approval.decided, run.finished).
	Events []string
}

// WebhookPayload is the body of a webhook delivery.
type WebhookPayload struct {
	// DeliveryID is the event's ID; retries of a delivery carry the same one.
	DeliveryID string `json:"delivery_id"`
	// Timestamp is the Unix time in seconds the delivery was queued at (the
	// same for its retries), as sent in X-Raydeploy-Timestamp.
	Timestamp int64 `json:"timestamp"`
	// Cluster is the cluster's name.
	Cluster string `json:"cluster"`
	// Event is the event the delivery tells of.
	Event Event `json:"event"`
}

// SignWebhook returns the X-Raydeploy-Signature value of body under secret.
func SignWebhook(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifyWebhook reports whether sig is the signature of body under secret.
func VerifyWebhook(secret, body []byte, sig string) bool {
	return hmac.Equal([]byte(SignWebhook(secret, body)), []byte(sig))
}

var defaultWebhookEvents = []string{EventApprovalPending, EventApprovalDecided, EventRunFinished}

type webhooks struct {
	cluster string
	log     *slog.Logger
	client  *http.Client
	maxWait time.Duration
	onEnd   func(ok bool)

	hooks []Webhook
	queue chan delivery
	wg    sync.WaitGroup
	stop  context.CancelFunc
	ctx   context.Context
}

type delivery struct {
	hook Webhook
	body []byte
	ts   int64
}

func newWebhooks(cluster string, hooks []Webhook, client *http.Client, maxWait time.Duration, log *slog.Logger, onEnd func(bool)) *webhooks {
	ctx, stop := context.WithCancel(context.Background())
	w := &webhooks{cluster: cluster, log: log, client: client, maxWait: maxWait, onEnd: onEnd, hooks: hooks,
		queue: make(chan delivery, 256), ctx: ctx, stop: stop}
	if len(hooks) == 0 {
		return w
	}
	const workers = 2
	for range workers {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case d := <-w.queue:
					w.deliver(d)
				}
			}
		}()
	}
	return w
}

func wants(h Webhook, typ string) bool {
	evs := h.Events
	if len(evs) == 0 {
		evs = defaultWebhookEvents
	}
	for _, e := range evs {
		if e == typ {
			return true
		}
	}
	return false
}

// notify queues deliveries of e; it never blocks.
func (w *webhooks) notify(e Event) {
	for _, h := range w.hooks {
		if !wants(h, e.Type) {
			continue
		}
		ts := time.Now().Unix()
		body, err := json.Marshal(WebhookPayload{DeliveryID: e.ID, Timestamp: ts, Cluster: w.cluster, Event: e})
		if err != nil {
			continue
		}
		select {
		case w.queue <- delivery{hook: h, body: body, ts: ts}:
		default:
			w.log.Warn("webhook delivery dropped: queue full", "event", e.Type, "id", e.ID)
			w.onEnd(false)
		}
	}
}

func (w *webhooks) deliver(d delivery) {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 200 * time.Millisecond
	b.MaxInterval = 10 * time.Second
	b.MaxElapsedTime = w.maxWait
	attempt := 0
	err := backoff.Retry(func() error {
		attempt++
		ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.hook.URL, bytes.NewReader(d.body))
		if err != nil {
			return backoff.Permanent(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "raydeploy-api")
		req.Header.Set("X-Raydeploy-Signature", SignWebhook(d.hook.Secret, d.body))
		req.Header.Set("X-Raydeploy-Timestamp", strconv.FormatInt(d.ts, 10))
		req.Header.Set("X-Raydeploy-Attempt", strconv.Itoa(attempt))
		resp, err := w.client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			err := fmt.Errorf("status %d", resp.StatusCode)
			if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusRequestTimeout {
				return backoff.Permanent(err)
			}
			return err
		}
		return nil
	}, backoff.WithContext(b, w.ctx))
	if err != nil {
		w.log.Warn("webhook delivery failed", "attempts", attempt, "err", err)
	}
	w.onEnd(err == nil)
}

func (w *webhooks) close() {
	w.stop()
	w.wg.Wait()
}
