package accounts_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"levee"
	"levee/accounts"
)

func TestChangeAccount(t *testing.T) {
	ctx := context.Background()
	s := MustService(t)
	if _, err := s.CreateDistrict(ctx, 0, "south"); err != nil {
		t.Fatal(err)
	}
	admin, _, err := s.CreateAccount(ctx, 0, accounts.NewAccount{Name: "root", Roles: []string{"admin"}})
	if err != nil {
		t.Fatal(err)
	}
	a, token, err := s.CreateAccount(ctx, admin.ID, accounts.NewAccount{Name: "alice", Roles: []string{"resident"}, District: "north",
		Password: "alice's long password"})
	if err != nil {
		t.Fatal(err)
	}
	session, _, err := s.Login(ctx, "alice", "alice's long password")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, token); err != nil { // now cached
		t.Fatal(err)
	}
	roles, south := []string{"resident", "treasurer"}, "south"
	got, err := s.ChangeAccount(ctx, admin.ID, a.ID, accounts.AccountChange{Roles: &roles, District: &south})
	if err != nil || !slices.Equal(got.Roles, roles) || got.District != "south" {
		t.Fatalf("change roles and district: %+v %v", got, err)
	}
	if p, err := s.Authenticate(ctx, token); err != nil || !p.Has("treasurer") || p.DistrictID == 0 {
		t.Fatalf("the token still carries the old roles: %+v %v", p, err)
	}

	yes, no := true, false
	if _, err := s.ChangeAccount(ctx, admin.ID, a.ID, accounts.AccountChange{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, token); levee.ErrorCode(err) != levee.EUNAUTHORIZED {
		t.Fatalf("a disabled account's token: %v", err)
	}
	if _, err := s.Session(ctx, session); levee.ErrorCode(err) != levee.EUNAUTHORIZED {
		t.Fatalf("a disabled account's session: %v", err)
	}
	if _, _, err := s.Login(ctx, "alice", "alice's long password"); err == nil {
		t.Fatal("a disabled account signed in")
	}
	if _, err := s.ChangeAccount(ctx, admin.ID, a.ID, accounts.AccountChange{Disabled: &no}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, token); err != nil {
		t.Fatalf("re-enabled account's token: %v", err)
	}

	for _, tc := range []struct {
		name string
		id   int64
		ch   accounts.AccountChange
		code string
	}{
		{"nothing", a.ID, accounts.AccountChange{}, levee.EINVALID},
		{"unknown role", a.ID, accounts.AccountChange{Roles: &[]string{"mayor"}}, levee.EINVALID},
		{"resident without a district", a.ID, accounts.AccountChange{District: new("")}, levee.EINVALID},
		{"unknown district", a.ID, accounts.AccountChange{District: new("atlantis")}, levee.EINVALID},
		{"no such account", 999999, accounts.AccountChange{Disabled: &yes}, levee.ENOTFOUND},
		{"disable yourself", admin.ID, accounts.AccountChange{Disabled: &yes}, levee.ECONFLICT},
		{"drop your own admin role", admin.ID, accounts.AccountChange{Roles: &[]string{"treasurer"}}, levee.ECONFLICT},
	} {
		if _, err := s.ChangeAccount(ctx, admin.ID, tc.id, tc.ch); levee.ErrorCode(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}

	list, err := s.List(ctx)
	if err != nil || len(list) != 2 || list[1].Name != "alice" || list[1].Disabled {
		t.Fatalf("list: %+v %v", list, err)
	}
	es, err := s.Audit(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	var changes int
	for _, e := range es {
		if e.Action == "account.change" {
			changes++
			var d map[string]any
			json.Unmarshal(e.Detail, &d)
			if d["before"] == nil || d["after"] == nil {
				t.Errorf("audit entry without before and after: %s", e.Detail)
			}
		}
	}
	if changes != 3 {
		t.Fatalf("%d account.change audit entries, want 3", changes)
	}
}

func TestSetPasswordHash(t *testing.T) {
	ctx := context.Background()
	s := MustService(t)
	hash := accounts.HashPassword("one shared password")
	for _, name := range []string{"north-1", "north-2"} {
		a, _, err := s.CreateAccount(ctx, 0, accounts.NewAccount{Name: name, Roles: []string{"resident"}, District: "north"})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SetPasswordHash(ctx, a.ID, hash); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Login(ctx, name, "one shared password"); err != nil {
			t.Fatalf("%s signs in with the shared password: %v", name, err)
		}
		if err := s.SetPasswordHash(ctx, a.ID, "plain text"); levee.ErrorCode(err) != levee.EINVALID {
			t.Fatalf("a password that is not a hash: %v", err)
		}
	}
}
