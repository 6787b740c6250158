#!/usr/bin/env node
import { runCommand } from '../common/agent.js';
import { startDnsd } from './dnsd.js';
import { dnsdFlags } from './config.js';

await runCommand({
  name: 'dnsd',
  usage: '[flags]',
  description:
    'Cluster DNS from etcd, SkyDNS-compatible: answers the zones (--domain) from records under\n' +
    '--prefix kept in memory by a watch, forwards other names to --nameservers.',
  flags: dnsdFlags,
  start: (flags, { log }) => startDnsd(flags, log),
});
