//! SNMP-style counters, exactly the set and order Go kcptun (latest kcp-go) reports.
//!
//! Each protocol component owns one [`Snmp`] and bumps only the fields that concern it; the
//! process-wide figure is the sum over all components, live and retired ([`Snmp::add`]). Counters
//! are plain `u64`s (no atomics): the event loop is single-threaded.
//!
//! Two renderings match Go byte for byte: [`Snmp::sigusr1_text`] (Go's `%+v` of the struct, as
//! logged on SIGUSR1) and the snmplog CSV ([`Snmp::csv_header`], [`Snmp::csv_row`]), whose column
//! order differs from the struct order (see SPEC §7.11).

use std::fmt::Write as _;

macro_rules! snmp_struct {
    ($($field:ident => $go:literal),* $(,)?) => {
        /// Counters in Go's struct order. Field docs: SPEC §7.11.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        #[allow(missing_docs)]
        pub struct Snmp {
            $(pub $field: u64,)*
        }

        impl Snmp {
            /// `(Go field name, value)` in Go's struct order.
            pub fn fields(&self) -> [(&'static str, u64); snmp_struct!(@count $($field)*)] {
                [$(($go, self.$field),)*]
            }

            /// The counter Go calls `go_name` (`None` for a name Go does not have).
            pub fn field_mut(&mut self, go_name: &str) -> Option<&mut u64> {
                match go_name {
                    $($go => Some(&mut self.$field),)*
                    _ => None,
                }
            }

            /// Adds every counter of `other` into `self` (wrapping, as Go's uint64 does).
            pub fn add(&mut self, other: &Snmp) {
                $(self.$field = self.$field.wrapping_add(other.$field);)*
            }
        }
    };
    (@count) => { 0 };
    (@count $head:ident $($rest:ident)*) => { 1 + snmp_struct!(@count $($rest)*) };
}

snmp_struct! {
    bytes_sent => "BytesSent",
    bytes_received => "BytesReceived",
    max_conn => "MaxConn",
    active_opens => "ActiveOpens",
    passive_opens => "PassiveOpens",
    curr_estab => "CurrEstab",
    in_errs => "InErrs",
    in_csum_errors => "InCsumErrors",
    kcp_in_errors => "KCPInErrors",
    in_pkts => "InPkts",
    out_pkts => "OutPkts",
    in_segs => "InSegs",
    out_segs => "OutSegs",
    in_bytes => "InBytes",
    out_bytes => "OutBytes",
    retrans_segs => "RetransSegs",
    fast_retrans_segs => "FastRetransSegs",
    early_retrans_segs => "EarlyRetransSegs",
    lost_segs => "LostSegs",
    repeat_segs => "RepeatSegs",
    fec_full_shard_set => "FECFullShardSet",
    fec_recovered => "FECRecovered",
    fec_errs => "FECErrs",
    fec_parity_shards => "FECParityShards",
    fec_shard_set => "FECShardSet",
    fec_shard_min => "FECShardMin",
    ring_buffer_snd_queue => "RingBufferSndQueue",
    ring_buffer_rcv_queue => "RingBufferRcvQueue",
    ring_buffer_snd_buffer => "RingBufferSndBuffer",
    oob_packets => "OOBPackets",
}

/// snmplog CSV columns after `Unix`, in Go's header order (latest kcptun).
pub const CSV_COLUMNS: [&str; 30] = [
    "BytesSent",
    "BytesReceived",
    "MaxConn",
    "ActiveOpens",
    "PassiveOpens",
    "CurrEstab",
    "InErrs",
    "InCsumErrors",
    "KCPInErrors",
    "InPkts",
    "OutPkts",
    "InSegs",
    "OutSegs",
    "InBytes",
    "OutBytes",
    "RetransSegs",
    "FastRetransSegs",
    "EarlyRetransSegs",
    "LostSegs",
    "RepeatSegs",
    "FECFullShards",
    "FECParityShards",
    "FECErrs",
    "FECRecovered",
    "FECShardSet",
    "FECShardMin",
    "RingBufferSndQueue",
    "RingBufferRcvQueue",
    "RingBufferSndBuffer",
    "OOBPackets",
];

impl Snmp {
    /// Go's `%+v` of `&Snmp{…}` as printed after `KCP SNMP:` on SIGUSR1.
    pub fn sigusr1_text(&self) -> String {
        let mut s = String::from("&{");
        for (i, (name, v)) in self.fields().iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            let _ = write!(s, "{name}:{v}");
        }
        s.push('}');
        s
    }

    /// The snmplog CSV header line (without line end).
    pub fn csv_header() -> String {
        let mut s = String::from("Unix");
        for c in CSV_COLUMNS {
            s.push(',');
            s.push_str(c);
        }
        s
    }

    fn by_csv_column(&self, col: &str) -> u64 {
        let go_name = if col == "FECFullShards" {
            "FECFullShardSet"
        } else {
            col
        };
        self.fields()
            .iter()
            .find(|(n, _)| *n == go_name)
            .map_or(0, |(_, v)| *v)
    }

    /// One snmplog CSV row (without line end) for the Unix time `unix_secs`.
    pub fn csv_row(&self, unix_secs: i64) -> String {
        let mut s = unix_secs.to_string();
        for c in CSV_COLUMNS {
            let _ = write!(s, ",{}", self.by_csv_column(c));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigusr1_matches_go_layout() {
        let s = Snmp {
            bytes_sent: 571,
            bytes_received: 603,
            max_conn: 1,
            passive_opens: 1,
            curr_estab: 1,
            in_pkts: 13,
            out_pkts: 8,
            in_segs: 11,
            out_segs: 9,
            in_bytes: 2567,
            out_bytes: 1011,
            fec_full_shard_set: 1,
            fec_parity_shards: 3,
            fec_shard_set: 1,
            ..Snmp::default()
        };
        // Observed from latest Go kcptun (SPEC §8.4).
        assert_eq!(
            s.sigusr1_text(),
            "&{BytesSent:571 BytesReceived:603 MaxConn:1 ActiveOpens:0 PassiveOpens:1 CurrEstab:1 \
             InErrs:0 InCsumErrors:0 KCPInErrors:0 InPkts:13 OutPkts:8 InSegs:11 OutSegs:9 \
             InBytes:2567 OutBytes:1011 RetransSegs:0 FastRetransSegs:0 EarlyRetransSegs:0 \
             LostSegs:0 RepeatSegs:0 FECFullShardSet:1 FECRecovered:0 FECErrs:0 \
             FECParityShards:3 FECShardSet:1 FECShardMin:0 RingBufferSndQueue:0 \
             RingBufferRcvQueue:0 RingBufferSndBuffer:0 OOBPackets:0}"
        );
    }

    #[test]
    fn csv_header_and_row_follow_go_column_order() {
        assert_eq!(
            Snmp::csv_header(),
            "Unix,BytesSent,BytesReceived,MaxConn,ActiveOpens,PassiveOpens,CurrEstab,InErrs,\
             InCsumErrors,KCPInErrors,InPkts,OutPkts,InSegs,OutSegs,InBytes,OutBytes,RetransSegs,\
             FastRetransSegs,EarlyRetransSegs,LostSegs,RepeatSegs,FECFullShards,FECParityShards,\
             FECErrs,FECRecovered,FECShardSet,FECShardMin,RingBufferSndQueue,RingBufferRcvQueue,\
             RingBufferSndBuffer,OOBPackets"
        );
        let s = Snmp {
            fec_full_shard_set: 7,
            fec_parity_shards: 8,
            fec_errs: 9,
            fec_recovered: 10,
            ..Snmp::default()
        };
        let row = s.csv_row(1795576323);
        let cols: Vec<&str> = row.split(',').collect();
        assert_eq!(cols.len(), 31);
        assert_eq!(cols[0], "1795576323");
        assert_eq!(&cols[21..25], &["7", "8", "9", "10"]);
    }

    #[test]
    fn add_sums_every_field() {
        let mut a = Snmp {
            in_pkts: 1,
            oob_packets: 2,
            ..Snmp::default()
        };
        a.add(&a.clone());
        assert_eq!((a.in_pkts, a.oob_packets), (2, 4));
    }
}
