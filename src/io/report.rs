use crate::proto::snmp::Snmp;
use std::time::Duration;
pub struct Reporter;
impl Reporter {
    pub fn new(_p: Option<String>, _d: Duration) -> Self {
        Reporter
    }
    pub fn tick(&mut self, _s: &Snmp) {}
}
pub fn reopen_log() {}
