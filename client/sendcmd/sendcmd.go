// Package sendcmd is the "sendhooks send" command: it enqueues one webhook
// job from the shell, through the client package, and prints the stream id
// of the entry it wrote.
//
//	sendhooks send -url URL [-data JSON] [-webhook-id ID] [-message-id ID]
//	               [-secret KEY] [-meta JSON] [-config FILE] [-redis ADDR] [-stream NAME]
//	sendhooks send -job FILE|- [-config FILE] [-redis ADDR] [-stream NAME]
//
// It finds Redis as the engine does: the config file (-config, else
// ./config.json, else /root/config.json, else defaults) and the SENDHOOKS_*
// environment variables, so inside the engine's container it reaches the
// engine's Redis and jobs stream with no flags at all. -redis and -stream
// override the address and the stream.
package sendcmd

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/client"
	"github.com/sendhooks/sendhooks/engine"
)

// Command is the send command with the process's standard streams and
// environment, given as fields so that tests can supply their own.
type Command struct {
	Stdin  io.Reader // read by -job -
	Stdout io.Writer // gets the stream id, one line
	Stderr io.Writer // gets usage and flag errors
	// Getenv reads SENDHOOKS_* overrides of the config file; nil reads none.
	Getenv func(string) string
}

// options are the parsed flags.
type options struct {
	config, redis, stream string
	jobFile               string
	job                   sendhooks.Job
	data, meta            string
	set                   []string // names of the flags given
}

// jobFlags are the flags that describe the job field by field; -job gives
// the whole job instead and excludes them.
var jobFlags = []string{"url", "data", "webhook-id", "message-id", "secret", "meta"}

// Run parses args (the arguments after "send"), sends the job and prints
// its stream id. -h prints the usage and returns nil.
func (c Command) Run(ctx context.Context, args []string) error {
	opts, err := c.parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	job, err := opts.buildJob(c.Stdin)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	// Checked before connecting, so a bad job is reported as such even
	// when Redis is out of reach.
	if _, err := client.Encode(job); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	cfg, err := engine.Load(engine.ConfigPath(opts.config), c.Getenv)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	if opts.redis != "" {
		cfg.Redis.Address = opts.redis
	}
	if opts.stream != "" {
		cfg.JobStream = opts.stream
	}
	rdb, err := engine.NewRedisClient(cfg)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	defer rdb.Close()
	id, err := client.New(rdb, client.WithStream(cfg.JobStream)).Send(ctx, job)
	if err != nil {
		return fmt.Errorf("send: redis %s: %w", cfg.Redis.Address, err)
	}
	if _, err := fmt.Fprintln(c.Stdout, id); err != nil {
		return fmt.Errorf("send: print the stream id: %w", err)
	}
	return nil
}

func (c Command) parse(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("sendhooks send", flag.ContinueOnError)
	fs.SetOutput(c.Stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: sendhooks send -url URL [-data JSON] [-webhook-id ID] [-message-id ID] [-secret KEY] [-meta JSON] [flags]
       sendhooks send -job FILE|- [flags]

Writes one webhook job into the jobs stream and prints its stream id.
Redis and the stream come from the engine's config file and SENDHOOKS_*
environment variables, unless -redis or -stream say otherwise.

`)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.job.URL, "url", "", "the receiver's `URL` (http or https)")
	fs.StringVar(&o.data, "data", "", "the request body, any `JSON` (default {})")
	fs.StringVar(&o.job.WebhookID, "webhook-id", "", "your `ID` for the webhook, sent as the webhook-id header")
	fs.StringVar(&o.job.MessageID, "message-id", "", "your `ID` for the message")
	fs.StringVar(&o.job.SecretHash, "secret", "", "the signing `KEY`: whsec_ + base64, or any other string used as raw bytes")
	fs.StringVar(&o.meta, "meta", "", "meta data carried into status events, any `JSON`")
	fs.StringVar(&o.jobFile, "job", "", "read the whole job JSON from `FILE`, or from standard input for -")
	fs.StringVar(&o.config, "config", "", "engine config `FILE` (default ./config.json, else /root/config.json, else built-in defaults)")
	fs.StringVar(&o.redis, "redis", "", "Redis `host:port`, overriding the config's redisAddress")
	fs.StringVar(&o.stream, "stream", "", "jobs stream `NAME`, overriding the config's redisStreamName (default hooks)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags come before it? see sendhooks send -h)", fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) { o.set = append(o.set, f.Name) })
	return o, nil
}

// buildJob returns the job given by -job or by the field flags.
func (o *options) buildJob(stdin io.Reader) (sendhooks.Job, error) {
	if !slices.Contains(o.set, "job") {
		if !slices.Contains(o.set, "url") {
			return sendhooks.Job{}, errors.New("give the job with -url (and -data, ...) or as JSON with -job FILE|-")
		}
		job := o.job
		if o.data != "" {
			job.Data = json.RawMessage(o.data)
		}
		if o.meta != "" {
			job.MetaData = json.RawMessage(o.meta)
		}
		return job, nil
	}
	var both []string
	for _, name := range jobFlags {
		if slices.Contains(o.set, name) {
			both = append(both, "-"+name)
		}
	}
	if len(both) > 0 {
		return sendhooks.Job{}, fmt.Errorf("-job gives the whole job; it cannot be combined with %s", strings.Join(both, ", "))
	}
	raw, err := readJobFile(o.jobFile, stdin)
	if err != nil {
		return sendhooks.Job{}, err
	}
	job, err := sendhooks.ParseJob(raw)
	if err != nil {
		return sendhooks.Job{}, fmt.Errorf("-job %s: %w", o.jobFile, err)
	}
	return job, nil
}

// readJobFile reads the file named by -job, or stdin for "-".
func readJobFile(name string, stdin io.Reader) ([]byte, error) {
	if name == "-" {
		if stdin == nil {
			return nil, errors.New("-job -: no standard input")
		}
		raw, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("-job -: read standard input: %w", err)
		}
		return raw, nil
	}
	raw, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("-job: %w", err)
	}
	return raw, nil
}
