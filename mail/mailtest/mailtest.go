// Package mailtest runs a real SMTP server on loopback for tests
// (github.com/emersion/go-smtp as the receiving side): it keeps what it
// receives and can be told to refuse, for now (4xx) or for good (5xx).
package mailtest

import (
	"encoding/base64"
	"errors"
	"io"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Received is one mail the server accepted.
type Received struct {
	From      string
	To        []string
	MessageID string
	Subject   string
	Body      string
}

// Server is a running SMTP server.
type Server struct {
	Addr string // host:port
	srv  *smtp.Server

	mu      sync.Mutex
	got     []Received
	refuse  int // how many more recipients to refuse
	code    int // with this code
	refused int // how many were refused
}

// MustStart starts a server for t, closed when t ends.
func MustStart(t testing.TB) *Server {
	t.Helper()
	s := &Server{}
	s.srv = smtp.NewServer(s)
	s.srv.Domain = "localhost"
	s.srv.AllowInsecureAuth = true
	s.srv.ReadTimeout, s.srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mailtest: listen: %v", err)
	}
	s.Addr = ln.Addr().String()
	go s.srv.Serve(ln)
	t.Cleanup(func() { s.srv.Close() })
	return s
}

// URL is the server's LEVEE_SMTP_URL.
func (s *Server) URL() string { return "smtp://" + s.Addr }

// Refuse makes the server refuse the next n recipients with code (e.g.
// 451, a temporary failure, or 550, a permanent one).
func (s *Server) Refuse(n, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse, s.code = n, code
}

// Refused is how many recipients were refused so far.
func (s *Server) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// Received returns a copy of what was accepted so far, in order.
func (s *Server) Received() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.got...)
}

// To returns what was accepted for address.
func (s *Server) To(address string) []Received {
	var out []Received
	for _, r := range s.Received() {
		for _, to := range r.To {
			if to == address {
				out = append(out, r)
			}
		}
	}
	return out
}

// NewSession implements smtp.Backend.
func (s *Server) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{s: s}, nil }

type session struct {
	s    *Server
	from string
	to   []string
}

func (x *session) Reset()        { x.from, x.to = "", nil }
func (x *session) Logout() error { return nil }
func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	x.from = from
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.s.mu.Lock()
	defer x.s.mu.Unlock()
	if x.s.refuse > 0 {
		x.s.refuse--
		x.s.refused++
		if x.s.code >= 500 {
			return &smtp.SMTPError{Code: x.s.code, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox here"}
		}
		return &smtp.SMTPError{Code: x.s.code, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "busy, try again later"}
	}
	x.to = append(x.to, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m, err := mail.ReadMessage(strings.NewReader(string(b)))
	if err != nil {
		return errors.New("mailtest: not a mail")
	}
	var br io.Reader = m.Body
	switch strings.ToLower(m.Header.Get("Content-Transfer-Encoding")) {
	case "quoted-printable":
		br = quotedprintable.NewReader(m.Body)
	case "base64":
		br = base64.NewDecoder(base64.StdEncoding, m.Body)
	}
	body, _ := io.ReadAll(br)
	rec := Received{From: x.from, To: x.to, MessageID: strings.Trim(m.Header.Get("Message-Id"), "<>"),
		Subject: m.Header.Get("Subject"), Body: strings.ReplaceAll(string(body), "\r\n", "\n")}
	x.s.mu.Lock()
	x.s.got = append(x.s.got, rec)
	x.s.mu.Unlock()
	return nil
}
