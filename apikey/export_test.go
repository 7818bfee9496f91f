package apikey

// The key format, for its own tests and benchmarks: the Service is its
// only user outside them.
type (
	Format = keyFormat
	Parsed = parsedKey
)

func NewFormat(cfg FormatConfig) (*Format, error) { return newFormat(cfg) }

var defaultFormat = func() *Format {
	f, err := newFormat(FormatConfig{Environments: []string{"live", "test"}})
	if err != nil {
		panic(err)
	}
	return f
}()

func DefaultFormat() *Format { return defaultFormat }

func (f *keyFormat) Parse(s string) (Parsed, error)      { return f.parse(s) }
func (f *keyFormat) Generate(env string) (Secret, error) { return f.generate(env, "") }
func (s *Service) Format() *Format                       { return s.format }
