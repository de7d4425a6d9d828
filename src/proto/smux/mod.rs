//! smux (in progress)
