package backend

import (
	"context"
	"io"
	"log"
	"log/slog"
	"strings"
	"sync"

	hclog "github.com/hashicorp/go-hclog"
)

// Logging crosses the process boundary twice: a backend logs with slog (or hclog), Serve writes those
// records to stderr as hclog JSON lines, go-plugin in the dispatcher parses each line back into a level, a
// message and fields and hands them to an hclog.Logger, and slogLogger below re-emits them through the
// dispatcher's *slog.Logger, tagged with the backend's name.

// levelTrace is hclog's Trace in slog terms: below Debug, so a Debug handler drops it.
const levelTrace = slog.LevelDebug - 4

// slogLogger is an hclog.Logger that writes to a *slog.Logger. go-plugin gives it both the backend's own
// lines and its own messages about the process (start, exit).
type slogLogger struct {
	l    *slog.Logger
	args []any // implied arguments from With
	// fromBackend marks the logger go-plugin derives with Named for the backend's stderr lines, as opposed
	// to go-plugin's own messages about the process.
	fromBackend bool

	// errMu guards lastErr: the last error-level message, which Launch adds to a start failure so that
	// the user reads why the backend gave up (a bad config key, say).
	errMu   *sync.Mutex
	lastErr *string
	// lastLine is the last line the backend wrote at any level (a plain text line is a Debug one to
	// go-plugin), for a backend that exits saying why on stderr without a log record.
	lastLine *string
}

func newSlogLogger(l *slog.Logger) *slogLogger {
	return &slogLogger{l: l, errMu: &sync.Mutex{}, lastErr: new(string), lastLine: new(string)}
}

func hclogToSlog(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return levelTrace
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// droppedKeys are fields go-plugin adds that the re-emitted record already has in another form.
var droppedKeys = map[string]bool{"timestamp": true, "@module": true}

func (s *slogLogger) Log(level hclog.Level, msg string, args ...any) {
	sl := hclogToSlog(level)
	ctx := context.Background()
	if s.fromBackend {
		s.errMu.Lock()
		if sl >= slog.LevelError {
			*s.lastErr = msg
		}
		*s.lastLine = msg
		s.errMu.Unlock()
	}
	if !s.l.Enabled(ctx, sl) {
		return
	}
	attrs := make([]any, 0, len(s.args)+len(args))
	attrs = append(attrs, s.args...)
	for i := 0; i+1 < len(args); i += 2 {
		key, ok := args[i].(string)
		if !ok || droppedKeys[key] {
			continue
		}
		if key == "backend" && s.fromBackend {
			// Backends tag their own lines backend=<name> too; Launch's logger already carries it, and a
			// key written twice splits a JSON reader's view of the line.
			continue
		}
		if key == "error" {
			key = "err" // go-plugin's name for it; the dispatcher's lines and the backends' say err
		}
		attrs = append(attrs, key, args[i+1])
	}
	if len(args)%2 == 1 {
		attrs = append(attrs, "EXTRA_VALUE", args[len(args)-1])
	}
	s.l.Log(ctx, sl, msg, attrs...)
}

func (s *slogLogger) lastError() string {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return *s.lastErr
}

// lastSaid is the backend's last error, else its last line, else a sentence saying it said nothing.
func (s *slogLogger) lastSaid() string {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	for _, said := range []string{*s.lastErr, strings.TrimSpace(*s.lastLine)} {
		if said != "" {
			return said
		}
	}
	return "it exited with status 78 (EX_CONFIG) without saying why; run `interlink-dispatcher check` and read its log"
}

func (s *slogLogger) Trace(msg string, args ...any) { s.Log(hclog.Trace, msg, args...) }
func (s *slogLogger) Debug(msg string, args ...any) { s.Log(hclog.Debug, msg, args...) }
func (s *slogLogger) Info(msg string, args ...any)  { s.Log(hclog.Info, msg, args...) }
func (s *slogLogger) Warn(msg string, args ...any)  { s.Log(hclog.Warn, msg, args...) }
func (s *slogLogger) Error(msg string, args ...any) { s.Log(hclog.Error, msg, args...) }

func (s *slogLogger) enabled(level hclog.Level) bool {
	return s.l.Enabled(context.Background(), hclogToSlog(level))
}

func (s *slogLogger) IsTrace() bool { return s.enabled(hclog.Trace) }
func (s *slogLogger) IsDebug() bool { return s.enabled(hclog.Debug) }
func (s *slogLogger) IsInfo() bool  { return s.enabled(hclog.Info) }
func (s *slogLogger) IsWarn() bool  { return s.enabled(hclog.Warn) }
func (s *slogLogger) IsError() bool { return s.enabled(hclog.Error) }

func (s *slogLogger) ImpliedArgs() []any { return s.args }

func (s *slogLogger) With(args ...any) hclog.Logger {
	c := *s
	c.args = append(append([]any{}, s.args...), args...)
	return &c
}

// Named does not add the name: the dispatcher tags lines with backend=<name>, which says more than the
// binary's file name go-plugin names its logger with. go-plugin calls it only for the backend's stderr.
func (s *slogLogger) Named(string) hclog.Logger {
	c := *s
	c.fromBackend = true
	return &c
}

func (s *slogLogger) Name() string                   { return "" }
func (s *slogLogger) ResetNamed(string) hclog.Logger { return s }
func (s *slogLogger) SetLevel(hclog.Level)           {}
func (s *slogLogger) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return slogWriter{s}
}

// GetLevel reports the lowest level the slog handler takes, so that go-plugin skips parsing lines that
// would be dropped anyway.
func (s *slogLogger) GetLevel() hclog.Level {
	for _, l := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
		if s.enabled(l) {
			return l
		}
	}
	return hclog.Off
}

func (s *slogLogger) StandardLogger(*hclog.StandardLoggerOptions) *log.Logger {
	return log.New(slogWriter{s}, "", 0)
}

type slogWriter struct{ s *slogLogger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.s.Info(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var _ hclog.Logger = (*slogLogger)(nil)

// hclogTimeFormat is the @timestamp layout go-plugin's parser requires; a line with any other layout is
// not recognised as JSON and would lose its level.
const hclogTimeFormat = "2006-01-02T15:04:05.000000Z07:00"

// newHclogJSONHandler returns a slog handler writing the hclog JSON lines go-plugin parses: @level,
// @message, @timestamp, then the fields.
func newHclogJSONHandler(w io.Writer, level slog.Leveler) slog.Handler {
	return slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Value.Kind() == slog.KindDuration {
				// JSON has no duration: slog writes nanoseconds, which reach the dispatcher's log as a
				// float (grace=1e+09). The dispatcher's own lines say 1s; so do the backends'.
				return slog.String(a.Key, a.Value.Duration().String())
			}
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				return slog.String("@timestamp", a.Value.Time().Format(hclogTimeFormat))
			case slog.LevelKey:
				return slog.String("@level", slogToHclogLevel(a.Value.Any().(slog.Level)))
			case slog.MessageKey:
				return slog.String("@message", a.Value.String())
			}
			return a
		},
	})
}

func slogToHclogLevel(l slog.Level) string {
	switch {
	case l < slog.LevelDebug:
		return "trace"
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	default:
		return "error"
	}
}

// levelEnv carries the dispatcher's log level to the backend so that it does not write lines the
// dispatcher would drop.
const levelEnv = "INTERLINK_DISPATCHER_BACKEND_LOG_LEVEL"

// minLevel is the lowest level l takes, as a name levelFromName reads.
func minLevel(l *slog.Logger) string {
	ctx := context.Background()
	switch {
	case l.Enabled(ctx, levelTrace):
		return "trace"
	case l.Enabled(ctx, slog.LevelDebug):
		return "debug"
	case l.Enabled(ctx, slog.LevelInfo):
		return "info"
	case l.Enabled(ctx, slog.LevelWarn):
		return "warn"
	default:
		return "error"
	}
}

func levelFromName(s string) slog.Level {
	switch strings.ToLower(s) {
	case "trace":
		return levelTrace
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}
