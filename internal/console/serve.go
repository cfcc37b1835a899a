package console

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/httpserve"
)

// writeTimeout bounds writing one response: a console request gathers
// answers from every instance (bounded by HubOptions.AskTimeout), so
// writes get a little longer.
const writeTimeout = 30 * time.Second

// Serve serves h on ln until ctx is done, with bounded timeouts and a
// graceful shutdown (in-flight requests get 5 s; httpserve.Serve). It
// closes ln.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	return httpserve.Serve(ctx, "console", ln, h, writeTimeout)
}
