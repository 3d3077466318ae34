package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/floelake/floe/internal/config"
	"github.com/floelake/floe/internal/verify"
)

func verifyCmd() *cobra.Command {
	var cfgPath, pipeline string
	var brokers []string
	var shown int
	cmd := &cobra.Command{
		Use:   "verify --config FILE --pipeline NAME",
		Short: "Check a windowed pipeline's table against a batch recomputation over its topics",
		Long: `Check that a windowed pipeline's table equals what a batch job computes from
the same input: read the pipeline's topics from where the pipeline started
(each partition's log start for start: earliest, otherwise the offsets it
recorded in the table's first snapshot) up to the offsets the table has committed, run each record through the
pipeline's decoder and transform, compute every window at once, and compare
the table row by row (windows, ends, event counts and aggregates; float sums
and averages within a relative 1e-9, approximate distinct counts exactly,
and against the exact counts within the sketches' error).

The topics must still hold every record the pipeline consumed. Run it while
the pipeline runs or after: it reads the table as of its current snapshot.
It exits with status 1 when the table differs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfgPath == "" || pipeline == "" {
				return errors.New("--config and --pipeline are required")
			}
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return err
			}
			if len(brokers) > 0 {
				cfg.Kafka.Brokers = brokers
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			ctx, cancel := signalContext()
			defer cancel()
			res, err := verify.Run(ctx, verify.Options{Config: cfg, Pipeline: pipeline, MaxShown: shown}, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			if !res.OK() {
				return fmt.Errorf("%d windows missing, %d extra, %d different", res.Missing, res.Extra, res.Different)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfgPath, "config", "", "configuration file (floe serve's)")
	f.StringVar(&pipeline, "pipeline", "", "the windowed pipeline to verify")
	f.StringSliceVar(&brokers, "brokers", nil, "Kafka brokers (default: the configuration's)")
	f.IntVar(&shown, "show", 20, "differences to print (all are counted)")
	return cmd
}
