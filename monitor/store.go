package monitor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sendhooks/sendhooks"
)

// The collections of the store.
const (
	// HooksCollection holds one document per job.
	HooksCollection = "hooks"
	// EventsCollection holds every status event once, by job.
	EventsCollection = "hookEvents"
)

// maxMergeRounds bounds how often Apply builds a hook again after other
// monitors wrote it in between.
const maxMergeRounds = 20

// ErrNotFound says that no hook has the id asked for.
var ErrNotFound = errors.New("hook not found")

// Store keeps the hooks in MongoDB.
type Store struct {
	client *mongo.Client
	hooks  *mongo.Collection
	events *mongo.Collection
	now    func() time.Time
}

// OpenStore makes a store on the database db of the MongoDB at uri. It does
// not wait for the server: operations fail until it answers.
func OpenStore(uri, db string) (*Store, error) {
	client, err := mongo.Connect(options.Client().ApplyURI(uri).
		SetServerSelectionTimeout(5 * time.Second).
		SetConnectTimeout(5 * time.Second))
	if err != nil {
		return nil, fmt.Errorf("connect to MongoDB: %w", err)
	}
	d := client.Database(db)
	return &Store{client: client, hooks: d.Collection(HooksCollection), events: d.Collection(EventsCollection), now: time.Now}, nil
}

// Close disconnects from MongoDB.
func (s *Store) Close(ctx context.Context) error {
	if err := s.client.Disconnect(ctx); err != nil {
		return fmt.Errorf("disconnect from MongoDB: %w", err)
	}
	return nil
}

// Ping checks that MongoDB answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx, nil); err != nil {
		return fmt.Errorf("ping MongoDB: %w", err)
	}
	return nil
}

// EnsureIndexes creates the indexes that the list, its filters and the
// statistics use. Creating an index that exists does nothing.
func (s *Store) EnsureIndexes(ctx context.Context) error {
	keys := []bson.D{
		{{Key: "created", Value: -1}, {Key: "_id", Value: -1}},
		{{Key: "status", Value: 1}, {Key: "created", Value: -1}},
		{{Key: "delivered", Value: -1}},
		{{Key: "externalId", Value: 1}},
		{{Key: "url", Value: 1}},
	}
	// One index per command: FerretDB v1 fails a createIndexes command
	// naming several indexes of which some exist.
	for _, k := range keys {
		if _, err := s.hooks.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: k}); err != nil {
			return fmt.Errorf("create indexes on %s: %w", HooksCollection, err)
		}
	}
	if _, err := s.events.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "hook", Value: 1}}}); err != nil {
		return fmt.Errorf("create indexes on %s: %w", EventsCollection, err)
	}
	return nil
}

// Get returns the hook with the id or, failing that, the newest hook with
// that producer's webhookId (externalId); ErrNotFound when there is none.
func (s *Store) Get(ctx context.Context, id string) (Hook, error) {
	hooks, err := s.find(ctx, bson.D{{Key: "_id", Value: id}}, nil)
	if err == nil && len(hooks) == 0 {
		hooks, err = s.find(ctx, bson.D{{Key: "externalId", Value: id}}, options.Find().SetSort(newestFirst).SetLimit(1))
	}
	if err != nil {
		return Hook{}, fmt.Errorf("find hook %q: %w", id, err)
	}
	if len(hooks) == 0 {
		return Hook{}, fmt.Errorf("hook %q: %w", id, ErrNotFound)
	}
	return hooks[0], nil
}

// Apply stores the events and brings their hooks up to date. When it
// returns nil every event is stored and reflected in its hook; on an error
// some may be, and applying them all again is safe.
//
// Every event is first inserted into the events collection under a hash of
// its content, so an event stored twice is stored once. A hook is then
// rebuilt from all the events of its job and written only when it was built
// from more events than the stored one; the write is conditional on the
// version read (atomic in MongoDB), and the round is repeated for the hooks
// written until the stored hook reflects every event read after the write.
// Because the events of a job only ever grow, of two hooks the one built
// from more events holds all the events of the other; so when writers race
// (several monitors, or a store without atomic conditional updates), the
// last writer's check still sees every event of the job.
func (s *Store) Apply(ctx context.Context, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	if err := s.insertEvents(ctx, events); err != nil {
		return err
	}
	keys := make([]string, 0, len(events))
	seen := make(map[string]bool, len(events))
	for _, ev := range events {
		if k := ev.Key(); !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	for round := 1; len(keys) > 0; round++ {
		if round > maxMergeRounds {
			return fmt.Errorf("write hooks: still conflicting after %d rounds", maxMergeRounds)
		}
		var err error
		if keys, err = s.rebuild(ctx, keys); err != nil {
			return err
		}
	}
	return nil
}

// eventDoc is one status event in the events collection.
type eventDoc struct {
	ID    string `bson:"_id"`   // a hash of hook and event
	Hook  string `bson:"hook"`  // the hook's id
	Event string `bson:"event"` // the event as JSON
}

// insertEvents stores the events; an event stored before is left as it is.
func (s *Store) insertEvents(ctx context.Context, events []Event) error {
	docs := make([]any, len(events))
	for i, ev := range events {
		b, err := json.Marshal(fitForStorage(ev.StatusEvent))
		if err != nil {
			return fmt.Errorf("encode event %s: %w", ev.EntryID, err)
		}
		sum := sha256.Sum256(append([]byte(ev.Key()+"\n"), b...))
		docs[i] = eventDoc{ID: hex.EncodeToString(sum[:16]), Hook: ev.Key(), Event: string(b)}
	}
	_, err := s.events.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	var bulkErr mongo.BulkWriteException
	if err != nil && !(errors.As(err, &bulkErr) && onlyDuplicateKeys(bulkErr)) {
		return fmt.Errorf("store %d events: %w", len(events), err)
	}
	return nil
}

// Bounds of what one event may bring into a document, which MongoDB caps
// at 16 MiB: a job larger than maxStoredJob is not kept (it cannot be
// retried from the monitor then), nor are larger meta data; long texts are
// cut.
const (
	maxStoredJob      = 4 << 20
	maxStoredMetaData = 64 << 10
	maxStoredText     = 4 << 10
)

// fitForStorage returns ev within the bounds above.
func fitForStorage(ev sendhooks.StatusEvent) sendhooks.StatusEvent {
	if len(ev.Job) > maxStoredJob {
		ev.Job = ""
	}
	if len(ev.MetaData) > maxStoredMetaData {
		ev.MetaData = nil
	}
	ev.Response = cut(ev.Response, maxStoredText)
	ev.DeliveryError = cut(ev.DeliveryError, maxStoredText)
	return ev
}

// cut shortens s to at most n bytes without splitting a UTF-8 sequence.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// rebuild builds the hooks of keys from all their events, writes those
// that the store lacks events of, and returns the keys written, which the
// caller checks again.
func (s *Store) rebuild(ctx context.Context, keys []string) ([]string, error) {
	in := bson.D{{Key: "$in", Value: keys}}
	cur, err := s.events.Find(ctx, bson.D{{Key: "hook", Value: in}})
	if err != nil {
		return nil, fmt.Errorf("find events: %w", err)
	}
	var evDocs []eventDoc
	if err := cur.All(ctx, &evDocs); err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	current, err := s.find(ctx, bson.D{{Key: "_id", Value: in}}, nil)
	if err != nil {
		return nil, err
	}
	stored := make(map[string]Hook, len(current))
	for _, h := range current {
		stored[h.ID] = h
	}
	// In one order, so that every writer builds the same document.
	slices.SortFunc(evDocs, func(a, b eventDoc) int { return strings.Compare(a.ID, b.ID) })
	built := make(map[string]*Hook, len(keys))
	for _, d := range evDocs {
		ev, err := ParseEvent([]byte(d.Event))
		if err != nil {
			return nil, fmt.Errorf("stored event %s: %w", d.ID, err)
		}
		h := built[d.Hook]
		if h == nil {
			h = &Hook{}
			built[d.Hook] = h
		}
		h.Apply(Event{StatusEvent: ev})
		h.EventCount++
	}
	var (
		models  []mongo.WriteModel
		written []string
	)
	now := s.now().UTC().Truncate(time.Millisecond)
	for _, key := range keys {
		h, old := built[key], stored[key]
		if h == nil || old.EventCount >= h.EventCount {
			continue // the stored hook has every event read
		}
		h.UpdatedAt = now
		if old.ID == "" {
			h.Version = 1
			models = append(models, mongo.NewInsertOneModel().SetDocument(h))
		} else {
			h.Version = old.Version + 1
			models = append(models, mongo.NewReplaceOneModel().
				SetFilter(bson.D{{Key: "_id", Value: key}, {Key: "version", Value: old.Version}}).
				SetReplacement(h))
		}
		written = append(written, key)
	}
	if len(models) == 0 {
		return nil, nil
	}
	_, err = s.hooks.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	var bulkErr mongo.BulkWriteException
	if err != nil && !(errors.As(err, &bulkErr) && onlyDuplicateKeys(bulkErr)) {
		return nil, fmt.Errorf("write %d hooks: %w", len(models), err)
	}
	return written, nil
}

func onlyDuplicateKeys(e mongo.BulkWriteException) bool {
	if e.WriteConcernError != nil || len(e.WriteErrors) == 0 {
		return false
	}
	for _, we := range e.WriteErrors {
		if !mongo.IsDuplicateKeyError(we) {
			return false
		}
	}
	return true
}

// find returns the hooks matching filter.
func (s *Store) find(ctx context.Context, filter bson.D, opts *options.FindOptionsBuilder) ([]Hook, error) {
	if opts == nil {
		opts = options.Find()
	}
	cur, err := s.hooks.Find(ctx, filter, opts)
	if err != nil {
		return nil, fmt.Errorf("find hooks: %w", err)
	}
	var hooks []Hook
	if err := cur.All(ctx, &hooks); err != nil {
		return nil, fmt.Errorf("read hooks: %w", err)
	}
	return hooks, nil
}
