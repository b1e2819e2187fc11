package check

import (
	"slices"
)

// FinalView is one conversation member's final view of one conversation,
// taken after heal and a final sync: the messages in the order the client
// shows them.
type FinalView struct {
	// Client is the conversation member (the user) whose view this is.
	Client string `json:"client"`
	// Conv is the conversation.
	Conv string `json:"conv"`
	// IDs are the server's message ids, in the order shown.
	IDs []string `json:"ids"`
	// Cmids are the messages' client message ids, parallel to IDs.
	Cmids []string `json:"cmids"`
	// Senders are the messages' sending users, parallel to IDs.
	Senders []string `json:"senders"`
}

// Sets is the outcome of [SetAnalysis]: the report's set keys, each a
// number of distinct messages (cmids), with the cmids listed sorted so that
// a report can name them.
type Sets struct {
	// Lost counts acknowledged messages that some conversation member
	// never saw in its final view.
	Lost int `json:"lost"`
	// Duplicated counts messages shown twice in one final view, or stored
	// under two message ids.
	Duplicated int `json:"duplicated"`
	// Unexpected counts messages seen in a final view that were never sent.
	Unexpected int `json:"unexpected"`
	// Recovered counts messages whose sends were all unknown (info) and
	// which turned out applied.
	Recovered int `json:"recovered"`
	// FailApplied counts messages whose sends were all answered fail
	// (definitely not applied) and which were applied anyway.
	FailApplied int `json:"fail_applied"`
	// NeverRead counts acknowledged messages of conversations that have no
	// final view at all, so that nothing can be said of them.
	NeverRead int `json:"never_read"`

	LostCmids        []string `json:"lost_cmids"`
	DuplicatedCmids  []string `json:"duplicated_cmids"`
	UnexpectedCmids  []string `json:"unexpected_cmids"`
	RecoveredCmids   []string `json:"recovered_cmids"`
	FailAppliedCmids []string `json:"fail_applied_cmids"`
	NeverReadCmids   []string `json:"never_read_cmids"`
}

// msgKey names a message in a conversation by its cmid, which the workload
// makes globally unique (see the package documentation).
type msgKey struct{ conv, cmid string }

// sendOutcome folds every send of one cmid: a client retries an unknown
// send with the same cmid, so one message may have several attempts.
type sendOutcome struct{ ok, fail, info bool }

// SetAnalysis compares what clients were told about their sends with what
// conversation members finally saw, in the manner of Jepsen's set-full
// checker (adds against final reads) and total-queue checker (duplicates).
// The final views define the conversation members: a message of conversation
// c must appear in every view whose Conv is c. Messages are named by their
// cmid within their conversation, and every count is of distinct messages:
//
//   - lost: some send of the cmid was acknowledged (ok), yet at least one
//     member's final view of the conversation lacks it.
//   - duplicated: one message id appears more than once in one client's
//     final view of a conversation, or one (sender, conversation, cmid) is
//     stored under two distinct message ids anywhere in the final views.
//     A view is final and deduplicated by the client, so the ordinary
//     overlap between a push and a later sync cannot show here; what does
//     show is the server storing a retry twice.
//   - unexpected: a cmid in a final view of a conversation to which no
//     send of that cmid was ever invoked.
//   - recovered: every send of the cmid was info (unknown), and the
//     message is in a final view: applied after all. A retry that was
//     later acknowledged makes the message acknowledged, not recovered.
//   - fail_applied: every send of the cmid was answered fail (definitely
//     not applied), yet the message is in a final view. A fail answered to
//     a retry of an earlier unknown or acknowledged send proves nothing,
//     since the earlier attempt may be the one that was applied.
//
// An acknowledged message of a conversation with no final view at all is
// neither lost nor seen: it is counted as never read (Jepsen's set-full
// "never-read"), so that a harness that forgot to take a view cannot pass
// for a lossless run.
func SetAnalysis(ops []Op, views []FinalView) Sets {
	sends := make(map[msgKey]*sendOutcome)
	for _, op := range ops {
		if op.Kind != KindSend {
			continue
		}
		k := msgKey{op.Conv, op.Cmid}
		o := sends[k]
		if o == nil {
			o = &sendOutcome{}
			sends[k] = o
		}
		switch op.Status {
		case StatusOK:
			o.ok = true
		case StatusFail:
			o.fail = true
		default:
			o.info = true
		}
	}

	type senderKey struct{ sender, conv, cmid string }
	viewsOf := make(map[string][]map[string]bool) // conv -> each view's cmids
	seen := make(map[msgKey]bool)                 // in at least one view
	idsOf := make(map[senderKey]map[string]bool)  // distinct ids per message
	dup := make(map[msgKey]bool)
	for _, v := range views {
		inView := make(map[string]bool, len(v.Cmids))
		idCount := make(map[string]int, len(v.IDs))
		for i, id := range v.IDs {
			cmid, sender := at(v.Cmids, i), at(v.Senders, i)
			k := msgKey{v.Conv, cmid}
			inView[cmid] = true
			seen[k] = true
			if idCount[id]++; idCount[id] == 2 {
				dup[k] = true
			}
			sk := senderKey{sender, v.Conv, cmid}
			if idsOf[sk] == nil {
				idsOf[sk] = make(map[string]bool)
			}
			if idsOf[sk][id] = true; len(idsOf[sk]) == 2 {
				dup[k] = true
			}
		}
		viewsOf[v.Conv] = append(viewsOf[v.Conv], inView)
	}

	var s Sets
	for k, o := range sends {
		vs := viewsOf[k.conv]
		missing := slices.ContainsFunc(vs, func(in map[string]bool) bool { return !in[k.cmid] })
		switch {
		case o.ok && len(vs) == 0:
			s.NeverReadCmids = append(s.NeverReadCmids, k.cmid)
		case o.ok && missing:
			s.LostCmids = append(s.LostCmids, k.cmid)
		case o.ok || !seen[k]:
			// Acknowledged and seen by all, or never applied: as it should be.
		case o.info:
			s.RecoveredCmids = append(s.RecoveredCmids, k.cmid)
		default: // every send failed
			s.FailAppliedCmids = append(s.FailAppliedCmids, k.cmid)
		}
	}
	for k := range seen {
		if sends[k] == nil {
			s.UnexpectedCmids = append(s.UnexpectedCmids, k.cmid)
		}
	}
	for k := range dup {
		s.DuplicatedCmids = append(s.DuplicatedCmids, k.cmid)
	}
	for _, l := range []*[]string{&s.LostCmids, &s.DuplicatedCmids, &s.UnexpectedCmids, &s.RecoveredCmids, &s.FailAppliedCmids, &s.NeverReadCmids} {
		*l = sortedNonNil(*l)
	}
	s.Lost, s.Duplicated, s.Unexpected = len(s.LostCmids), len(s.DuplicatedCmids), len(s.UnexpectedCmids)
	s.Recovered, s.FailApplied, s.NeverRead = len(s.RecoveredCmids), len(s.FailAppliedCmids), len(s.NeverReadCmids)
	return s
}

// at returns s[i], or "" when s is too short: a view whose parallel slices
// disagree in length must not crash the report.
func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return ""
}

// sortedNonNil sorts s in place and returns it, an empty slice for nil so
// that a report shows [] rather than null.
func sortedNonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	slices.Sort(s)
	return slices.Compact(s)
}

// Divergent counts the conversations whose members' final views are not all
// identical, message ids in the order shown. It is the view half of the
// report's `converged` key (the replica half compares the servers' logs):
// after heal, an eventually consistent system must show every member the
// same conversation, in the same order.
func Divergent(views []FinalView) int {
	first := make(map[string][]string)
	bad := make(map[string]bool)
	for _, v := range views {
		ids, ok := first[v.Conv]
		switch {
		case !ok:
			first[v.Conv] = v.IDs
		case !slices.Equal(ids, v.IDs):
			bad[v.Conv] = true
		}
	}
	return len(bad)
}
