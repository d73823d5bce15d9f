package market

import (
	"testing"
	"time"

	"levee"
)

func TestTransition(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		code     string // "" when allowed
	}{
		{StatusOpen, StatusClosed, ""},
		{StatusOpen, StatusResolved, ""},
		{StatusOpen, StatusVoid, ""},
		{StatusOpen, StatusOpen, ""},
		{StatusClosed, StatusResolved, ""},
		{StatusClosed, StatusVoid, ""},
		{StatusClosed, StatusClosed, levee.ECONFLICT},
		{StatusClosed, StatusOpen, levee.ECONFLICT},
		{StatusResolved, StatusVoid, levee.ECONFLICT},
		{StatusVoid, StatusResolved, levee.ECONFLICT},
		{StatusResolved, StatusOpen, levee.ECONFLICT},
	} {
		t.Run(tc.from+"→"+tc.to, func(t *testing.T) {
			err := Transition(tc.from, tc.to)
			if got := levee.ErrorCode(err); err != nil && got != tc.code || err == nil && tc.code != "" {
				t.Fatalf("Transition(%s, %s) = %v, want code %q", tc.from, tc.to, err, tc.code)
			}
		})
	}
}

func TestEffectiveStatus(t *testing.T) {
	closes := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		status string
		now    time.Time
		want   string
	}{
		{StatusOpen, closes.Add(-time.Second), StatusOpen},
		{StatusOpen, closes, StatusClosed},
		{StatusResolved, closes.Add(time.Hour), StatusResolved},
	} {
		if got := EffectiveStatus(tc.status, closes, tc.now); got != tc.want {
			t.Errorf("EffectiveStatus(%s, %v) = %s, want %s", tc.status, tc.now, got, tc.want)
		}
	}
}
