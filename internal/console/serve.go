package console

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/httpserve"
)

// writeTimeout bounds a console response: a request gathers answers from
// every instance (bounded by HubOptions.AskTimeout), so writes get longer
// than reads.
const writeTimeout = 30 * time.Second

// Serve serves h on ln until ctx is done, then shuts down gracefully
// (in-flight requests get 5 s) and returns nil, or the error of a shutdown
// that had to be forced. If serving fails before ctx is done it returns
// that error. Serve closes ln.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	return httpserve.Serve(ctx, ln, h, httpserve.Options{Name: "console", WriteTimeout: writeTimeout})
}
