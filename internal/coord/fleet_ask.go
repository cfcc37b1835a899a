package coord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// envelope is one request or reply on the fleet's channels. A reply carries
// the request's ID; From is the sender.
type envelope struct {
	ID   string          `json:"id"`
	From string          `json:"from"`
	Body json.RawMessage `json:"body"`
}

// Handle sets the function that answers requests other instances Ask this
// one. Requests are answered by a few workers in arrival order (a queue of
// 256 waits; more are dropped), each call with a context bounded to 10 s; its return value is the reply body and must be
// valid JSON. nil stops answering (requests then time out at the asker).
func (f *Fleet) Handle(fn func(ctx context.Context, req []byte) []byte) {
	if fn == nil {
		f.handler.Store(nil)
		return
	}
	f.handler.Store(&fn)
}

// Ask sends req (valid JSON, at most 64 KiB) to instance id and waits,
// bounded by ctx, for its reply body. Asking this instance calls its own
// handler directly. It fails with ErrNotListening when id does not receive
// requests (stopped, crashed or never existed), with ErrUnavailable when
// Redis cannot be reached, and with ctx's error when no reply came in time.
func (f *Fleet) Ask(ctx context.Context, id string, req []byte) ([]byte, error) {
	if len(req) > maxRequestBytes || !json.Valid(req) {
		return nil, fmt.Errorf("coord: fleet ask: request must be valid JSON of at most %d bytes", maxRequestBytes)
	}
	if id == f.self.ID {
		return f.answer(ctx, req)
	}
	reqID := f.self.ID + "-" + strconv.FormatUint(f.seq.Add(1), 36)
	ch := make(chan []byte, 1)
	f.mu.Lock()
	f.pending[reqID] = ch
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.pending, reqID)
		f.mu.Unlock()
	}()
	msg, _ := json.Marshal(envelope{ID: reqID, From: f.self.ID, Body: req})
	n, err := f.client.Publish(ctx, f.askChannel(id), msg).Result()
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, ctx.Err()
	case err != nil:
		return nil, unavailable("fleet ask", err)
	case n == 0:
		return nil, fmt.Errorf("coord: fleet ask %s: %w", id, ErrNotListening)
	}
	select {
	case body := <-ch:
		return body, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("coord: fleet ask %s: no reply: %w", id, ctx.Err())
	case <-f.stop:
		return nil, fmt.Errorf("coord: fleet ask %s: %w", id, errClosed)
	}
}

// answer runs this instance's handler on req.
func (f *Fleet) answer(ctx context.Context, req []byte) ([]byte, error) {
	fn := f.handler.Load()
	if fn == nil {
		return nil, errors.New("coord: fleet: this instance answers no requests")
	}
	return (*fn)(ctx, req), nil
}

// receive dispatches messages until the subscription closes: requests to
// the handler, replies to the Ask waiting for them. go-redis reconnects and
// resubscribes on its own.
func (f *Fleet) receive(ch <-chan *redis.Message) {
	defer f.wg.Done()
	for msg := range ch {
		switch {
		case strings.HasPrefix(msg.Channel, f.opts.KeyPrefix+"fleet:ask:"):
			f.serve(msg.Payload)
		case strings.HasPrefix(msg.Channel, f.opts.KeyPrefix+"fleet:reply:"):
			f.deliver(msg.Payload)
		}
	}
}

// decodeEnvelope parses an untrusted message of at most limit bytes.
func decodeEnvelope(payload string, limit int) (envelope, error) {
	var e envelope
	if len(payload) > limit {
		return e, fmt.Errorf("coord: fleet message of %d bytes exceeds %d", len(payload), limit)
	}
	if err := json.Unmarshal([]byte(payload), &e); err != nil {
		return e, fmt.Errorf("coord: fleet message: %w", err)
	}
	if e.ID == "" || e.From == "" || len(e.Body) == 0 {
		return e, errors.New("coord: fleet message lacks id, from or body")
	}
	return e, nil
}

// serve queues one request for the answering workers, or drops it when
// the queue is full (the asker then times out).
func (f *Fleet) serve(payload string) {
	req, err := decodeEnvelope(payload, maxRequestBytes)
	if err != nil {
		f.report(err)
		return
	}
	select {
	case f.requests <- req:
	default:
		f.report(fmt.Errorf("coord: fleet: dropped a request from %s: %d already waiting", req.From, cap(f.requests)))
	}
}

// answerRequests is one of the workers answering queued requests, until
// Close.
func (f *Fleet) answerRequests() {
	defer f.wg.Done()
	for {
		select {
		case <-f.stop:
			return
		case req := <-f.requests:
			f.reply(req)
		}
	}
}

// reply runs the handler for req and publishes its answer to the asker.
func (f *Fleet) reply(req envelope) {
	ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
	defer cancel()
	body, err := f.answer(ctx, req.Body)
	if err != nil {
		f.report(err)
		return
	}
	msg, err := json.Marshal(envelope{ID: req.ID, From: f.self.ID, Body: body})
	if err != nil || len(msg) > maxReplyBytes {
		f.report(fmt.Errorf("coord: fleet: reply to %s is not JSON or exceeds %d bytes", req.From, maxReplyBytes))
		return
	}
	if err := f.client.Publish(ctx, f.replyChannel(req.From), msg).Err(); err != nil {
		f.report(unavailable("fleet reply", err))
	}
}

// deliver hands a reply to the Ask waiting for it; replies nobody waits for
// (late, or not ours) are dropped.
func (f *Fleet) deliver(payload string) {
	rep, err := decodeEnvelope(payload, maxReplyBytes)
	if err != nil {
		f.report(err)
		return
	}
	f.mu.Lock()
	ch := f.pending[rep.ID]
	f.mu.Unlock()
	if ch == nil {
		return
	}
	select {
	case ch <- rep.Body:
	default:
	}
}
