// Package mail delivers the notification outbox by email over SMTP and
// sends the links that confirm addresses.
//
// Delivery is at most one send per notification and instance at a time: a
// worker takes one undelivered row with SELECT … FOR UPDATE SKIP LOCKED,
// sends it while holding the row lock and records the outcome in the same
// transaction, so two workers (in one process or in several instances on
// one database) never send one notification both. A send refused for now
// (4xx, or the server unreachable) is retried with exponential backoff; one
// refused for good (5xx) or out of attempts is marked failed with its last
// error. The one way to a duplicate is a crash or lost database between the
// server's acceptance and the commit; the Message-ID is the notification's
// own, so a receiver can drop the copy.
//
// SMTP is spoken by github.com/wneessen/go-mail: net/smtp is frozen and
// leaves implicit TLS (smtps), authentication choice, message encoding and
// SMTP status codes to every caller; go-mail does them and is maintained.
package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"levee"
)

// Server is where mail goes: parsed from LEVEE_SMTP_URL.
type Server struct {
	Host     string
	Port     int
	SSL      bool // smtps: TLS from the first byte
	StartTLS bool // smtp with ?starttls=required: refuse a server without STARTTLS
	Username string
	Password string
}

// ParseURL reads smtp://[user:pass@]host[:port][?starttls=required] (port 587
// by default; STARTTLS when the server offers it) or smtps://… (implicit
// TLS, port 465 by default).
func ParseURL(s string) (*Server, error) {
	u, err := url.Parse(s)
	bad := fmt.Errorf("LEVEE_SMTP_URL: want smtp://user:pass@host:port or smtps://user:pass@host:port")
	if err != nil || u.Host == "" || u.Opaque != "" || (u.Path != "" && u.Path != "/") {
		return nil, bad
	}
	srv := &Server{Host: u.Hostname()}
	switch u.Scheme {
	case "smtp":
		srv.Port = 587
		switch u.Query().Get("starttls") {
		case "", "opportunistic":
		case "required":
			srv.StartTLS = true
		default:
			return nil, fmt.Errorf("LEVEE_SMTP_URL: starttls must be required or opportunistic")
		}
	case "smtps":
		srv.Port, srv.SSL = 465, true
	default:
		return nil, bad
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, bad
		}
		srv.Port = n
	}
	if u.User != nil {
		srv.Username = u.User.Username()
		srv.Password, _ = u.User.Password()
	}
	return srv, nil
}

// String names the server without its password.
func (s *Server) String() string {
	scheme := "smtp"
	if s.SSL {
		scheme = "smtps"
	}
	user := ""
	if s.Username != "" {
		user = s.Username + "@"
	}
	return scheme + "://" + user + net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
}

// Options configure a Mailer.
type Options struct {
	// Server is the SMTP server; nil keeps every notification in the app.
	Server *Server
	From   string // the From address (LEVEE_MAIL_FROM)
	// BaseURL starts every link, e.g. https://levee.example.org (no slash at
	// the end).
	BaseURL string
	Timeout time.Duration // per SMTP connection step; default 15 s
	Logger  *slog.Logger
}

// Mailer writes and sends mails.
type Mailer struct {
	opts Options
}

// New returns a Mailer.
func New(opts Options) *Mailer {
	if opts.Timeout <= 0 {
		opts.Timeout = 15 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	opts.BaseURL = strings.TrimRight(opts.BaseURL, "/")
	return &Mailer{opts: opts}
}

// SetBaseURL sets the start of every link; call it before the Mailer is
// used (the program learns its address only once it listens).
func (m *Mailer) SetBaseURL(base string) { m.opts.BaseURL = strings.TrimRight(base, "/") }

// Delivering reports whether mail leaves the node.
func (m *Mailer) Delivering() bool { return m.opts.Server != nil }

// Where says, for people, where mail goes.
func (m *Mailer) Where() string {
	if m.opts.Server == nil {
		return "Mail: not sent (LEVEE_SMTP_URL is unset); notifications are kept in the app, on /jury and /api/v1/me/notifications"
	}
	return fmt.Sprintf("Mail: notifications are sent through %s from %s, with links to %s", m.opts.Server, m.opts.From, m.opts.BaseURL)
}

// dial opens a connection to the server, ready to send.
func (m *Mailer) dial(ctx context.Context) (*gomail.Client, error) {
	s := m.opts.Server
	opts := []gomail.Option{gomail.WithPort(s.Port), gomail.WithTimeout(m.opts.Timeout)}
	switch {
	case s.SSL:
		opts = append(opts, gomail.WithSSL())
	case s.StartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	}
	if s.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover), gomail.WithUsername(s.Username), gomail.WithPassword(s.Password))
	}
	c, err := gomail.NewClient(s.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("smtp client: %w", err)
	}
	if err := c.DialWithContext(ctx); err != nil {
		return nil, fmt.Errorf("connect to %s: %w", s, err)
	}
	return c, nil
}

// message builds a plain-text mail. id, if not empty, makes the Message-ID
// stable, so that a copy sent twice can be recognised.
func (m *Mailer) message(to, subject, body, id string) (*gomail.Msg, error) {
	msg := gomail.NewMsg()
	if err := msg.From(m.opts.From); err != nil {
		return nil, fmt.Errorf("from %q: %w", m.opts.From, err)
	}
	if err := msg.To(to); err != nil {
		return nil, fmt.Errorf("to %q: %w", to, err)
	}
	msg.Subject(subject)
	msg.SetDate()
	if id != "" {
		host := "levee"
		if u, err := url.Parse(m.opts.BaseURL); err == nil && u.Hostname() != "" {
			host = u.Hostname()
		}
		msg.SetMessageIDWithValue(id + "@" + host)
	} else {
		msg.SetMessageID()
	}
	msg.SetGenHeader(gomail.Header("Auto-Submitted"), "auto-generated")
	msg.SetBodyString(gomail.TypeTextPlain, body)
	return msg, nil
}

// SendConfirmation mails the link that confirms address to. Without a
// server it logs the link instead (a node that sends no mail has nothing
// to confirm for, but the demo can still be followed). Errors: EUNAVAILABLE
// when the server does not take it.
func (m *Mailer) SendConfirmation(ctx context.Context, to, token string) error {
	subject, body := confirmation(m.opts.BaseURL, token)
	if m.opts.Server == nil {
		m.opts.Logger.Info("mail not sent (LEVEE_SMTP_URL is unset)", slog.String("to", to), slog.String("subject", subject),
			slog.String("link", m.opts.BaseURL+"/email/confirm?token="+token))
		return nil
	}
	return m.sendNow(ctx, to, subject, body, "your address is saved, set it again later for a new link")
}

// SendPasswordReset mails name's one-time password reset link to their
// confirmed address. Unlike a confirmation it is never logged: without a
// server the caller hands the link over itself. Errors: EUNAVAILABLE when
// there is no server or it does not take the mail.
func (m *Mailer) SendPasswordReset(ctx context.Context, to, name, token string, expires time.Time) error {
	if m.opts.Server == nil {
		return levee.Errorf(levee.EUNAVAILABLE, "this node sends no mail (LEVEE_SMTP_URL is unset)")
	}
	subject, body := passwordReset(m.opts.BaseURL, name, token, expires)
	return m.sendNow(ctx, to, subject, body, "reset again later for a new link")
}

// ResetLink is the address of the page a reset token opens.
func (m *Mailer) ResetLink(token string) string {
	return m.opts.BaseURL + "/password/reset?token=" + token
}

// sendNow mails one message at once, on its own connection. Links that
// carry a secret are sent this way rather than through the outbox, so the
// secret is never stored: if the server refuses, the caller says so and the
// person asks again.
func (m *Mailer) sendNow(ctx context.Context, to, subject, body, later string) error {
	msg, err := m.message(to, subject, body, "")
	if err != nil {
		return err
	}
	c, err := m.dial(ctx)
	if err != nil {
		return unavailable(err, later)
	}
	defer c.Close()
	if err := c.Send(msg); err != nil {
		return unavailable(err, later)
	}
	return nil
}

// permanent reports whether the server refused for good (5xx).
func permanent(err error) bool {
	var se *gomail.SendError
	if errors.As(err, &se) {
		code := se.ErrorCode()
		return code >= 500 && code < 600
	}
	return false
}
