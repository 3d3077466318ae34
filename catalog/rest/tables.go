package rest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/apache/iceberg-go/table"
)

// Values of the snapshots parameter of a table load.
const (
	snapshotsAll  = "all"
	snapshotsRefs = "refs"
)

// tableMetadataJSON is the table's metadata as iceberg-go writes it to the
// metadata file; in mode snapshotsRefs only the snapshots a branch or tag
// references (the current one among them) are kept.
func tableMetadataJSON(tbl *table.Table, mode string) (json.RawMessage, error) {
	meta, err := json.Marshal(tbl.Metadata())
	if err != nil {
		return nil, fmt.Errorf("encode metadata: %w", err)
	}
	if mode != snapshotsRefs {
		return meta, nil
	}
	return referencedSnapshotsOnly(meta)
}

// referencedSnapshotsOnly drops from metadata JSON the snapshots no ref
// points at. Everything else, the snapshot log included, is left as it is.
func referencedSnapshotsOnly(meta []byte) (json.RawMessage, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(meta, &doc); err != nil {
		return nil, fmt.Errorf("decode metadata: %w", err)
	}
	raw, ok := doc["snapshots"]
	if !ok {
		return meta, nil
	}
	keep, err := referencedIDs(doc)
	if err != nil {
		return nil, err
	}
	var snaps []json.RawMessage
	if err := json.Unmarshal(raw, &snaps); err != nil {
		return nil, fmt.Errorf("decode snapshots: %w", err)
	}
	kept := []json.RawMessage{}
	for _, s := range snaps {
		var id struct {
			ID int64 `json:"snapshot-id"`
		}
		if err := json.Unmarshal(s, &id); err != nil {
			return nil, fmt.Errorf("decode snapshot: %w", err)
		}
		if keep[id.ID] {
			kept = append(kept, s)
		}
	}
	if doc["snapshots"], err = json.Marshal(kept); err != nil {
		return nil, err
	}
	return json.Marshal(doc)
}

// referencedIDs returns the ids of the snapshots the refs and the
// current-snapshot-id of metadata JSON point at.
func referencedIDs(doc map[string]json.RawMessage) (map[int64]bool, error) {
	keep := map[int64]bool{}
	if raw, ok := doc["refs"]; ok {
		var refs map[string]struct {
			ID int64 `json:"snapshot-id"`
		}
		if err := json.Unmarshal(raw, &refs); err != nil {
			return nil, fmt.Errorf("decode refs: %w", err)
		}
		for _, ref := range refs {
			keep[ref.ID] = true
		}
	}
	if raw, ok := doc["current-snapshot-id"]; ok {
		var id *int64
		if err := json.Unmarshal(raw, &id); err != nil {
			return nil, fmt.Errorf("decode current-snapshot-id: %w", err)
		}
		if id != nil {
			keep[*id] = true
		}
	}
	return keep, nil
}

// etag identifies a table load's response: the metadata file (every commit
// writes a new one), the snapshots mode and the table config.
func (h *handler) etag(metadataLocation, mode string) string {
	sum := sha256.Sum256([]byte(metadataLocation + "\x00" + mode + "\x00" + h.configID))
	return `"` + hex.EncodeToString(sum[:20]) + `"`
}

// etagMatches reports whether an If-None-Match header names etag.
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	for part := range strings.SplitSeq(header, ",") {
		part = strings.TrimSpace(part)
		if part == "*" || strings.TrimPrefix(part, "W/") == etag {
			return true
		}
	}
	return false
}
