module github.com/felixmq/felix

go 1.26.8

require (
	github.com/go-json-experiment/json v1.27.2
	github.com/spf13/cobra v1.10.2
)

require (
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/spf13/pflag v1.0.9 // indirect
)
