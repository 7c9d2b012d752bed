package agent

import (
	"net/http"
	"path"
	"strings"
)

// Error codes of answers a server gives before any route runs.
const (
	// CodeMisdirectedRequest: 421, a request to a development server
	// (LoopbackHostOnly) addressed to a host name that is not loopback.
	CodeMisdirectedRequest = "misdirected_request"
	// CodeUnsupportedMediaType: 415, a body that is not of the content
	// type the route reads.
	CodeUnsupportedMediaType = "unsupported_media_type"
)

// JSONErrors wraps a ServeMux so that its own answers are the API's JSON
// errors ({"error": …, "code": …}, see WriteError) instead of text/plain
// or HTML: a path no pattern matches is 404 not_found, a method the path
// has no route for is 405 method_not_allowed (with the mux's Allow
// header). A path that is not canonical ("//", "/./", "/../"), which the
// mux would answer with a redirect to a cleaned path carrying the query
// string, is 404 not_found as well: an API client is not sent elsewhere
// with its token in the URL. The one redirect kept is the mux's to a
// subtree pattern's root (GET or HEAD /desk, with "/desk/" registered, is
// redirected to /desk/), for a path that is otherwise canonical and has no
// query: a query may hold a credential under any name (an events token, a
// capability, an OAuth code), so none is repeated in a Location; any other
// request for the root without its slash is 404. Answers of the
// mux's handlers are left alone.
func JSONErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// As the mux does, the escaped path is cleaned: %2F is no slash.
		if p := r.URL.EscapedPath(); r.Method != http.MethodConnect && !canonicalPath(p) {
			WriteError(w, http.StatusNotFound, CodeNotFound, "no such path: "+truncate(p, 80)+" is not in canonical form")
			return
		}
		_, pattern := mux.Handler(r)
		if pattern == "" {
			w = &muxErrorWriter{ResponseWriter: w}
		} else if isSlashRedirect(pattern, r.URL.EscapedPath()) {
			if (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.URL.RawQuery == "" && !r.URL.ForceQuery {
				// The path is canonical: the mux's redirect only
				// adds the slash.
				mux.ServeHTTP(w, r)
				return
			}
			WriteError(w, http.StatusNotFound, CodeNotFound, "no such path: "+truncate(r.URL.Path, 80))
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// isSlashRedirect reports whether the mux answers the escaped path p,
// which pattern matched, with a redirect to p + "/": p has no trailing
// slash while pattern's path ("/desk/", "GET /desk/{$}", "/x/{id}/",
// method and host aside) ends with one and has as many segments as p + "/"
// (a subtree pattern that matched a path beneath it has fewer).
func isSlashRedirect(pattern, p string) bool {
	if strings.HasSuffix(p, "/") {
		return false
	}
	if i := strings.IndexAny(pattern, " \t"); i >= 0 {
		pattern = strings.TrimLeft(pattern[i:], " \t")
	}
	if i := strings.IndexByte(pattern, '/'); i > 0 {
		pattern = pattern[i:] // a host before the path
	}
	pattern = strings.TrimSuffix(pattern, "{$}")
	return strings.HasSuffix(pattern, "/") && strings.Count(pattern, "/") == strings.Count(p, "/")+1
}

// canonicalPath reports whether p is what http.ServeMux keeps as it is:
// rooted, without empty, "." or ".." segments.
func canonicalPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c == p
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// muxErrorWriter turns the mux's own error status (404, 405) into the
// API's JSON error, dropping the text/plain body http.Error writes.
type muxErrorWriter struct {
	http.ResponseWriter
	replaced bool
}

func (m *muxErrorWriter) WriteHeader(code int) {
	if code < 400 {
		m.ResponseWriter.WriteHeader(code)
		return
	}
	m.replaced = true
	h := m.ResponseWriter.Header()
	h.Del("Content-Length")
	h.Del("X-Content-Type-Options")
	c, msg := CodeNotFound, "no such path"
	switch code {
	case http.StatusMethodNotAllowed:
		c, msg = CodeMethodNotAllowed, "method not allowed on this path"
	case http.StatusNotFound:
	default:
		c, msg = CodeBadRequest, strings.ToLower(http.StatusText(code))
	}
	WriteError(m.ResponseWriter, code, c, msg)
}

func (m *muxErrorWriter) Write(b []byte) (int, error) {
	if m.replaced {
		return len(b), nil
	}
	return m.ResponseWriter.Write(b)
}
