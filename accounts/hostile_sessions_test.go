package accounts_test

import (
	"context"
	"testing"

	"levee"
	"levee/accounts"
	"levee/migrations/dbtest"
)

// TestRevokingATokenEndsItsSessions: a browser session opened with a token
// dies with the token; one opened with the password lives on.
func TestRevokingATokenEndsItsSessions(t *testing.T) {
	ctx := context.Background()
	s := accounts.New(dbtest.New(t))
	a, token, err := s.CreateAccount(ctx, 0, accounts.NewAccount{Name: "tess", Roles: []string{"treasurer"}, Password: "a long enough password"})
	if err != nil {
		t.Fatal(err)
	}
	viaToken, p, err := s.LoginWithToken(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	if p.TokenID == 0 {
		t.Fatal("a session opened with a token does not know its token")
	}
	viaPassword, _, err := s.Login(ctx, "tess", "a long enough password")
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := s.CreateToken(ctx, a.ID, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, a.ID, other.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, viaToken); err != nil {
		t.Fatalf("revoking another token ended this session: %v", err)
	}
	if err := s.RevokeToken(ctx, a.ID, p.TokenID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, viaToken); levee.ErrorCode(err) != levee.EUNAUTHORIZED {
		t.Fatalf("session opened with a revoked token: %v, want unauthorized", err)
	}
	if _, err := s.Session(ctx, viaPassword); err != nil {
		t.Fatalf("revoking a token ended the password session: %v", err)
	}
}

// TestNewAdminTokenRevokesTheOld: changing LEVEE_ADMIN_TOKEN replaces the
// old token and ends the sessions opened with it; tokens the admin made
// itself stay; choosing the old token again brings it back.
func TestNewAdminTokenRevokesTheOld(t *testing.T) {
	ctx := context.Background()
	s := accounts.New(dbtest.New(t))
	const old, next = "the-first-admin-token-0123", "the-second-admin-token-4567"
	if _, err := s.EnsureAdmin(ctx, old); err != nil {
		t.Fatal(err)
	}
	sid, p, err := s.LoginWithToken(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	_, own, err := s.CreateToken(ctx, p.AccountID, "script")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnsureAdmin(ctx, next); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, old); levee.ErrorCode(err) != levee.EUNAUTHORIZED {
		t.Fatalf("old admin token after a new one is set: %v, want unauthorized", err)
	}
	if _, err := s.Session(ctx, sid); levee.ErrorCode(err) != levee.EUNAUTHORIZED {
		t.Fatalf("session opened with the old admin token: %v, want unauthorized", err)
	}
	for _, tok := range []string{next, own} {
		if _, err := s.Authenticate(ctx, tok); err != nil {
			t.Fatalf("token %q after the change: %v", tok[:8], err)
		}
	}
	if _, err := s.EnsureAdmin(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, old); err != nil {
		t.Fatalf("old token chosen again: %v", err)
	}
	if _, err := s.Authenticate(ctx, next); levee.ErrorCode(err) != levee.EUNAUTHORIZED {
		t.Fatalf("second token after going back: %v, want unauthorized", err)
	}
}
