#!/usr/bin/env node
/** `logs`: tail, services and export against the aggregator's query API. */
import { main } from './cli.js';

await main();
