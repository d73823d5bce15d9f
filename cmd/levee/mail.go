package main

import (
	"context"
	"fmt"
	"net/url"
	"os"

	"levee/accounts"
	"levee/mail"
)

// validateMail checks the mail settings together.
func (c *Config) validateMail() error {
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("LEVEE_PUBLIC_URL must be an http(s) URL such as https://levee.example.org")
		}
	}
	if c.SMTPURL == "" {
		return nil
	}
	if _, err := mail.ParseURL(c.SMTPURL); err != nil {
		return err
	}
	if c.MailFrom == "" {
		return fmt.Errorf("LEVEE_MAIL_FROM is needed with LEVEE_SMTP_URL, e.g. levee@example.org")
	}
	if err := accounts.ValidateEmail(c.MailFrom); err != nil {
		return fmt.Errorf("LEVEE_MAIL_FROM %q is not an email address such as levee@example.org", c.MailFrom)
	}
	return nil
}

// newMailer builds the mailer from the config (checked by Validate); its
// links start at the public URL, set once the server listens.
func (m *Main) newMailer() *mail.Mailer {
	var srv *mail.Server
	if m.Config.SMTPURL != "" {
		var err error
		if srv, err = mail.ParseURL(m.Config.SMTPURL); err != nil {
			srv = nil // Validate refused it already; tests that skip Validate keep mail in the app
		}
	}
	return mail.New(mail.Options{Server: srv, From: m.Config.MailFrom, Logger: m.logger})
}

// startMail sets the links' base and, if mail is sent, starts the delivery
// worker; it prints where mail goes.
func (m *Main) startMail() {
	base := m.Config.PublicURL
	if base == "" {
		base = "http://" + m.Addr()
	}
	m.mail.SetBaseURL(base)
	fmt.Fprintln(m.stdout, m.mail.Where())
	if !m.mail.Delivering() {
		return
	}
	host, _ := os.Hostname()
	w := mail.NewWorker(m.DB, m.mail, mail.WorkerOptions{Poll: m.Config.MailPoll, Now: m.Clock, ID: fmt.Sprintf("%s/%d", host, os.Getpid())})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	m.stopMail = func() { cancel(); <-done }
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
}
