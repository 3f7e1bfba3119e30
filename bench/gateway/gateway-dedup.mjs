// Reference gateway configuration for bench/router.py's "de-duplication on" runs: identical
// concurrent client requests share one execution (subgraph fetch de-duplication is on anyway).
export const gatewayConfig = {
  inboundInflightRequestDeduplication: true,
};
