package wire

import (
	"regexp"
	"strings"
	"testing"
)

var (
	// nameRE is the spec's pattern for user and group names (the fuzz
	// oracle checks validation against it).
	nameRE   = regexp.MustCompile(`^[a-z0-9_.-]{1,32}$`)
	deviceRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)
)

func TestValidDevice(t *testing.T) {
	for _, s := range []string{
		"", "default", "Phone-1", "host:42", "a.b_c", strings.Repeat("D", 64), strings.Repeat("D", 65),
		"a b", "a/b", "é", "a\n",
	} {
		if got, want := validDevice(s), deviceRE.MatchString(s); got != want {
			t.Errorf("validDevice(%q) = %v; the pattern says %v", s, got, want)
		}
	}
}

func TestNeedsAuth(t *testing.T) {
	for _, op := range []string{OpRegister, OpLogin, OpResume, OpPing} {
		if NeedsAuth(op) {
			t.Errorf("NeedsAuth(%s) = true; the spec lets it run before login", op)
		}
	}
	for _, op := range []string{OpUserInfo, OpUserUpdate, OpSend, OpSync, OpHistory, OpAck, OpRead, OpTyping,
		OpGroupCreate, OpGroupJoin, OpGroupLeave, OpGroupMembers, OpPresence, OpStatus} {
		if !NeedsAuth(op) {
			t.Errorf("NeedsAuth(%s) = false; the spec requires an authenticated connection", op)
		}
	}
}
