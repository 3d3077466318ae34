package commit

import (
	"cmp"
	"slices"
)

// Balance computes an assignment of partitions to the live members:
//
//   - balanced: member counts differ by at most one;
//   - sticky: the number of partitions that change owner is the least any
//     balanced assignment allows; a partition whose owner is not live
//     always moves;
//   - deterministic: the result depends only on the sets given, not on
//     their order or on map iteration.
//
// Members with the most live partitions get the larger share; each keeps
// its lowest partitions up to its share, and the rest are handed out in
// partition order to members in id order. With no members every partition
// is unassigned (owner "").
func Balance(members []string, partitions []PartitionKey, current map[PartitionKey]string) map[PartitionKey]string {
	ms := slices.Sorted(slices.Values(members))
	ms = slices.DeleteFunc(slices.Compact(ms), func(m string) bool { return m == "" })
	ps := slices.SortedFunc(slices.Values(partitions), comparePartitionKeys)
	ps = slices.Compact(ps)
	out := make(map[PartitionKey]string, len(ps))
	if len(ms) == 0 {
		for _, p := range ps {
			out[p] = ""
		}
		return out
	}
	owned := make(map[string][]PartitionKey, len(ms))
	for _, m := range ms {
		owned[m] = nil
	}
	var free []PartitionKey
	for _, p := range ps {
		if o, live := owned[current[p]]; live {
			owned[current[p]] = append(o, p)
		} else {
			free = append(free, p)
		}
	}
	// The members keeping the most get the extra slots.
	order := slices.Clone(ms)
	slices.SortStableFunc(order, func(a, b string) int { return cmp.Compare(len(owned[b]), len(owned[a])) })
	share := make(map[string]int, len(ms))
	base, extra := len(ps)/len(ms), len(ps)%len(ms)
	for i, m := range order {
		share[m] = base
		if i < extra {
			share[m]++
		}
	}
	for _, m := range ms {
		keep := owned[m][:min(len(owned[m]), share[m])]
		free = append(free, owned[m][len(keep):]...)
		for _, p := range keep {
			out[p] = m
		}
		share[m] -= len(keep)
	}
	slices.SortFunc(free, comparePartitionKeys)
	for _, m := range ms {
		for ; share[m] > 0; share[m]-- {
			out[free[0]] = m
			free = free[1:]
		}
	}
	return out
}
