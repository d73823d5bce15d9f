package accounts_test

import (
	"context"
	"testing"

	"levee"
	"levee/accounts"
	"levee/migrations/dbtest"
)

func TestNewAccountValidate(t *testing.T) {
	tests := []struct {
		name  string
		in    accounts.NewAccount
		field string // "" means valid
		kind  string // expected kind after defaults
	}{
		{"resident", accounts.NewAccount{Name: "alice", Roles: []string{"resident"}, District: "north"}, "", "person"},
		{"contractor defaults to organisation", accounts.NewAccount{Name: "dykeworks", Roles: []string{"contractor"}}, "", "organisation"},
		{"contractor person", accounts.NewAccount{Name: "dave", Kind: "person", Roles: []string{"contractor"}}, "", "person"},
		{"bad name", accounts.NewAccount{Name: "Alice Smith", Roles: []string{"resident"}, District: "north"}, "name", ""},
		{"empty name", accounts.NewAccount{Roles: []string{"resident"}, District: "north"}, "name", ""},
		{"no roles", accounts.NewAccount{Name: "x"}, "roles", ""},
		{"unknown role", accounts.NewAccount{Name: "x", Roles: []string{"mayor"}}, "roles", ""},
		{"duplicate role", accounts.NewAccount{Name: "x", Roles: []string{"steward", "steward"}}, "roles", ""},
		{"resident without district", accounts.NewAccount{Name: "x", Roles: []string{"resident"}}, "district", ""},
		{"bad kind", accounts.NewAccount{Name: "x", Kind: "robot", Roles: []string{"steward"}}, "kind", ""},
		{"organisation as treasurer", accounts.NewAccount{Name: "x", Kind: "organisation", Roles: []string{"treasurer"}}, "roles", ""},
		{"negative credit", accounts.NewAccount{Name: "x", Roles: []string{"steward"}, Credit: -1}, "credit", ""},
		{"short password", accounts.NewAccount{Name: "x", Roles: []string{"steward"}, Password: "short"}, "password", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.in.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if tt.in.Kind != tt.kind {
					t.Fatalf("kind = %q, want %q", tt.in.Kind, tt.kind)
				}
				return
			}
			if levee.ErrorCode(err) != levee.EINVALID || levee.ErrorField(err) != tt.field {
				t.Fatalf("got %v, want invalid field %q", err, tt.field)
			}
		})
	}
}

func TestPasswordHash(t *testing.T) {
	h := accounts.HashPassword("correct horse battery")
	if !accounts.CheckPassword(h, "correct horse battery") {
		t.Fatal("right password refused")
	}
	if accounts.CheckPassword(h, "correct horse battery!") {
		t.Fatal("wrong password accepted")
	}
	if accounts.CheckPassword("garbage", "x") {
		t.Fatal("garbage hash accepted")
	}
	if h == accounts.HashPassword("correct horse battery") {
		t.Fatal("hashes are not salted")
	}
}

func MustService(t *testing.T) *accounts.Service {
	t.Helper()
	s := accounts.New(dbtest.New(t))
	if _, err := s.CreateDistrict(context.Background(), 0, "north"); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCreateAccountCreditsCashThroughTheLedger(t *testing.T) {
	ctx := context.Background()
	s := MustService(t)
	a, token, err := s.CreateAccount(ctx, 0, accounts.NewAccount{Name: "alice", Roles: []string{"resident"}, District: "north", Credit: levee.Units(1000)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Cash != levee.Units(1000) || got.District != "north" || got.Name != "alice" {
		t.Fatalf("got %+v", got)
	}
	p, err := s.Authenticate(ctx, token)
	if err != nil || p.AccountID != a.ID || !p.Has("resident") || p.Has("admin") {
		t.Fatalf("authenticate: %+v %v", p, err)
	}

	_, _, err = s.CreateAccount(ctx, 0, accounts.NewAccount{Name: "alice", Roles: []string{"resident"}, District: "north"})
	if levee.ErrorCode(err) != levee.ECONFLICT || levee.ErrorField(err) != "name" {
		t.Fatalf("duplicate name: %v", err)
	}
	_, _, err = s.CreateAccount(ctx, 0, accounts.NewAccount{Name: "bob", Roles: []string{"resident"}, District: "atlantis"})
	if levee.ErrorCode(err) != levee.EINVALID || levee.ErrorField(err) != "district" {
		t.Fatalf("unknown district: %v", err)
	}
	if _, err := s.IDByName(ctx, "bob"); levee.ErrorCode(err) != levee.ENOTFOUND {
		t.Fatalf("a failed create left an account behind: %v", err)
	}
}

func TestTokensAndSessions(t *testing.T) {
	ctx := context.Background()
	s := MustService(t)
	a, first, err := s.CreateAccount(ctx, 0, accounts.NewAccount{Name: "tess", Roles: []string{"treasurer"}, Password: "a long enough password"})
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := s.CreateAccount(ctx, 0, accounts.NewAccount{Name: "sam", Roles: []string{"steward"}})
	if err != nil {
		t.Fatal(err)
	}
	tok, second, err := s.CreateToken(ctx, a.ID, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, b.ID, tok.ID); levee.ErrorCode(err) != levee.ENOTFOUND {
		t.Fatalf("another account revoked my token: %v", err)
	}
	if err := s.RevokeToken(ctx, a.ID, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, second); levee.ErrorCode(err) != levee.EUNAUTHORIZED {
		t.Fatalf("revoked token still works: %v", err)
	}
	if _, err := s.Authenticate(ctx, first); err != nil {
		t.Fatalf("other token stopped working: %v", err)
	}

	if _, _, err := s.Login(ctx, "tess", "the wrong password"); levee.ErrorCode(err) != levee.EUNAUTHORIZED {
		t.Fatalf("wrong password: %v", err)
	}
	if _, _, err := s.Login(ctx, "nobody", "whatever password"); levee.ErrorCode(err) != levee.EUNAUTHORIZED {
		t.Fatalf("unknown name: %v", err)
	}
	if _, _, err := s.Login(ctx, "sam", "whatever password"); levee.ErrorCode(err) != levee.EUNAUTHORIZED {
		t.Fatalf("account without password: %v", err)
	}
	sid, p, err := s.Login(ctx, "tess", "a long enough password")
	if err != nil || p.AccountID != a.ID || p.CSRFToken == "" {
		t.Fatalf("login: %+v %v", p, err)
	}
	if p, err := s.Session(ctx, sid); err != nil || p.AccountID != a.ID || p.Via != "session" {
		t.Fatalf("session: %+v %v", p, err)
	}
	if err := s.Logout(ctx, sid); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, sid); levee.ErrorCode(err) != levee.EUNAUTHORIZED {
		t.Fatalf("session after logout: %v", err)
	}
}

func TestEnsureAdmin(t *testing.T) {
	ctx := context.Background()
	s := MustService(t)
	generated, err := s.EnsureAdmin(ctx, "")
	if err != nil || generated == "" {
		t.Fatalf("first start: %q %v", generated, err)
	}
	again, err := s.EnsureAdmin(ctx, "")
	if err != nil || again != "" {
		t.Fatalf("second start printed a new token: %q %v", again, err)
	}
	p, err := s.Authenticate(ctx, generated)
	if err != nil || !p.Has("admin") {
		t.Fatalf("generated admin token: %+v %v", p, err)
	}
	const configured = "a-configured-admin-token-1234"
	if _, err := s.EnsureAdmin(ctx, configured); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnsureAdmin(ctx, configured); err != nil {
		t.Fatal(err)
	}
	if p, err := s.Authenticate(ctx, configured); err != nil || !p.Has("admin") {
		t.Fatalf("configured admin token: %+v %v", p, err)
	}
}
