package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client calls a console's JSON API; `waypoint sessions` and `waypoint
// terminate` are built on it. Its methods are safe for concurrent use.
type Client struct {
	// BaseURL is the console, e.g. "http://waypoint-db:8080" on the tailnet
	// or "http://127.0.0.1:9188" on the loopback face.
	BaseURL string
	// Token, when set, is sent as "Authorization: Bearer" (the loopback
	// face needs it; the tailnet face ignores it).
	Token string
	// HTTP sends the requests. Nil means a client with a 30 s timeout.
	HTTP *http.Client
}

// APIError is a non-2xx answer: the status and the console's message.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("console answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// IsNotFound reports whether err is the console's 404 (no such session).
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// Sessions lists the sessions passing f, and the instances that did not
// answer.
func (c *Client) Sessions(ctx context.Context, f Filter) ([]Session, []string, error) {
	var out sessionsReply
	q := url.Values{}
	if f.Listener != "" {
		q.Set("listener", f.Listener)
	}
	if f.Login != "" {
		q.Set("login", f.Login)
	}
	err := c.do(ctx, http.MethodGet, "/api/sessions", q, &out)
	return out.Sessions, out.Unreachable, err
}

// Terminate ends session id (on instance, if not ""); see POST
// /api/sessions/{id}/terminate.
func (c *Client) Terminate(ctx context.Context, id, instance string) (Result, error) {
	q := url.Values{}
	if instance != "" {
		q.Set("instance", instance)
	}
	var res Result
	err := c.do(ctx, http.MethodPost, "/api/sessions/"+url.PathEscape(id)+"/terminate", q, &res)
	return res, err
}

// TerminateLogin ends every session of login.
func (c *Client) TerminateLogin(ctx context.Context, login string) (Result, error) {
	var res Result
	err := c.do(ctx, http.MethodPost, "/api/identities/"+url.PathEscape(login)+"/terminate", nil, &res)
	return res, err
}

// Revalidate re-checks login's grant for its open sessions now.
func (c *Client) Revalidate(ctx context.Context, login string) (Result, error) {
	var res Result
	err := c.do(ctx, http.MethodPost, "/api/identities/"+url.PathEscape(login)+"/revalidate", nil, &res)
	return res, err
}

// maxResponse bounds an API answer.
const maxResponse = 32 << 20

// do sends one request and decodes the JSON answer into out.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, out any) error {
	u := strings.TrimSuffix(c.BaseURL, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("console at %s: %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("console at %s: read answer: %w", c.BaseURL, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(body))
		}
		return &APIError{Status: resp.StatusCode, Message: e.Error}
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("console at %s: undecodable answer: %w", c.BaseURL, err)
	}
	return nil
}
