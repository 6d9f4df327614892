//! Network interfaces: listing them (the one place here that calls the
//! C library directly) and choosing the one to beacon on (pure).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One address of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iface {
    pub name: String,
    pub index: u32,
    pub addr: IpAddr,
    pub netmask: Option<IpAddr>,
    /// The IPv4 broadcast address (from the system, else from the netmask).
    pub broadcast: Option<Ipv4Addr>,
    pub up: bool,
    pub loopback: bool,
    pub can_broadcast: bool,
    pub multicast: bool,
    pub point_to_point: bool,
}

impl Iface {
    /// What CZMQ's `ziflist` accepts: up, not loopback, not point to point,
    /// broadcast-capable (IPv4) or multicast-capable (IPv6).
    pub fn czmq_valid(&self) -> bool {
        self.up
            && !self.loopback
            && !self.point_to_point
            && match self.addr {
                IpAddr::V4(_) => self.can_broadcast,
                IpAddr::V6(_) => self.multicast,
            }
    }

    /// The address to send IPv4 broadcasts to on this interface.
    pub fn broadcast_v4(&self) -> Option<Ipv4Addr> {
        if let Some(b) = self.broadcast {
            return Some(b);
        }
        match (self.addr, self.netmask) {
            (IpAddr::V4(a), Some(IpAddr::V4(m))) => {
                Some(Ipv4Addr::from(u32::from(a) | !u32::from(m)))
            }
            _ => None,
        }
    }
}

/// Which interface a beacon uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// `*`: any address, the limited broadcast or the group on the default
    /// route's interface.
    Wildcard,
    Iface(Iface),
    /// Nothing matches.
    None,
}

/// Chooses an interface as CZMQ's zbeacon does, for IPv4 (`ipv6` false)
/// or IPv6:
/// - `*`: the wildcard;
/// - empty: the first valid interface (up, not loopback, broadcast- or
///   multicast-capable);
/// - one digit `N`: the N-th valid interface;
/// - otherwise an interface name or address. Unlike CZMQ, a loopback
///   interface may be named explicitly (`lo`, `127.0.0.1`): that keeps
///   beacons inside the machine.
pub fn choose(ifaces: &[Iface], want: &str, ipv6: bool) -> Choice {
    let want = want.trim();
    let family = |i: &&Iface| i.addr.is_ipv6() == ipv6;
    if want == "*" {
        return Choice::Wildcard;
    }
    let found = if want.is_empty() {
        ifaces.iter().filter(family).find(|i| i.czmq_valid())
    } else if want.len() == 1 && want.as_bytes()[0].is_ascii_digit() {
        let n = usize::from(want.as_bytes()[0] - b'0');
        ifaces
            .iter()
            .filter(family)
            .filter(|i| i.czmq_valid())
            .nth(n)
    } else {
        let addr: Option<IpAddr> = want.parse().ok();
        ifaces
            .iter()
            .filter(family)
            .find(|i| i.up && !i.point_to_point && (i.name == want || Some(i.addr) == addr))
    };
    match found {
        Some(i) => Choice::Iface(i.clone()),
        None => Choice::None,
    }
}

/// Every address of every interface, in the system's order.
pub fn list() -> io::Result<Vec<Iface>> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head into `head`; we free it below
    // with freeifaddrs and do not keep pointers into it.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut cur = head;
    let mut guard = 0usize;
    while !cur.is_null() && guard < 65_536 {
        guard += 1;
        // SAFETY: `cur` is a non-null node of the list getifaddrs returned,
        // valid until freeifaddrs.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        // SAFETY: the sockaddr pointers are null or point to sockaddrs of
        // the family they announce, valid until freeifaddrs.
        let addr = unsafe { sockaddr_ip(ifa.ifa_addr) };
        let Some(addr) = addr else { continue };
        if ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
        let flags = ifa.ifa_flags;
        let has = |f: libc::c_int| flags & (f as libc::c_uint) != 0;
        // SAFETY: as above.
        let netmask = unsafe { sockaddr_ip(ifa.ifa_netmask) };
        let broadcast = if has(libc::IFF_BROADCAST) {
            // SAFETY: with IFF_BROADCAST, ifa_ifu holds the broadcast
            // address (or null).
            match unsafe { sockaddr_ip(ifa.ifa_ifu) } {
                Some(IpAddr::V4(b)) => Some(b),
                _ => None,
            }
        } else {
            None
        };
        // SAFETY: ifa_name is a valid C string (above).
        let index = unsafe { libc::if_nametoindex(ifa.ifa_name) };
        out.push(Iface {
            name: name.to_string_lossy().into_owned(),
            index,
            addr,
            netmask,
            broadcast,
            up: has(libc::IFF_UP),
            loopback: has(libc::IFF_LOOPBACK),
            can_broadcast: has(libc::IFF_BROADCAST),
            multicast: has(libc::IFF_MULTICAST),
            point_to_point: has(libc::IFF_POINTOPOINT),
        });
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// The IP address in a sockaddr, if it is IPv4 or IPv6.
///
/// # Safety
/// `sa` must be null or point to a valid sockaddr whose family field tells
/// its real type.
unsafe fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<IpAddr> {
    if sa.is_null() {
        return None;
    }
    // SAFETY: the caller guarantees a valid sockaddr; the family tells us
    // which larger structure it is, so the casts read within it.
    unsafe {
        match i32::from((*sa).sa_family) {
            libc::AF_INET => {
                let sin = &*(sa as *const libc::sockaddr_in);
                Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                    sin.sin_addr.s_addr,
                ))))
            }
            libc::AF_INET6 => {
                let sin6 = &*(sa as *const libc::sockaddr_in6);
                Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
            }
            _ => None,
        }
    }
}

/// Chooses one interface for both families at once (`DISCOVER
/// ipv6=both`): `want` as [`choose`] reads it, for IPv4 first, else for
/// IPv6; then both families' addresses on that one interface (an IPv6
/// address that is not link-local first, since a link-local one needs
/// its scope to be dialled). `*`: the wildcard for both.
pub fn choose_both(ifaces: &[Iface], want: &str) -> (Choice, Choice) {
    let name = match (choose(ifaces, want, false), choose(ifaces, want, true)) {
        (Choice::Iface(i), _) | (_, Choice::Iface(i)) => i.name,
        (v4, v6) => return (v4, v6),
    };
    let on = |ipv6: bool| {
        let mut here = ifaces
            .iter()
            .filter(|i| i.name == name && i.up && i.addr.is_ipv6() == ipv6);
        let routable = here.clone().find(|i| !is_link_local(i.addr));
        match routable.or_else(|| here.next()) {
            Some(i) => Choice::Iface(i.clone()),
            None => Choice::None,
        }
    };
    (on(false), on(true))
}

/// An IPv6 link-local address (`fe80::/10`).
pub fn is_link_local(addr: IpAddr) -> bool {
    matches!(addr, IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80)
}

/// The name of the interface with `index`, from a list.
pub fn name_of(ifaces: &[Iface], index: u32) -> Option<&str> {
    ifaces
        .iter()
        .find(|i| i.index == index)
        .map(|i| i.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(name: &str, addr: &str, mask: &str, lo: bool) -> Iface {
        Iface {
            name: name.into(),
            index: 1,
            addr: addr.parse().unwrap(),
            netmask: Some(mask.parse().unwrap()),
            broadcast: None,
            up: true,
            loopback: lo,
            can_broadcast: !lo,
            multicast: !lo,
            point_to_point: false,
        }
    }

    fn sample() -> Vec<Iface> {
        vec![
            iface("lo", "127.0.0.1", "255.0.0.0", true),
            iface("lo", "::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true),
            iface("eth0", "10.1.2.3", "255.255.0.0", false),
            iface("eth0", "fd00::3", "ffff:ffff:ffff:ffff::", false),
            iface("eth1", "192.168.7.9", "255.255.255.0", false),
        ]
    }

    fn name(c: Choice) -> String {
        match c {
            Choice::Iface(i) => format!("{} {}", i.name, i.addr),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn chooses_like_czmq() {
        let l = sample();
        assert_eq!(choose(&l, "*", false), Choice::Wildcard);
        assert_eq!(name(choose(&l, "", false)), "eth0 10.1.2.3");
        assert_eq!(name(choose(&l, "", true)), "eth0 fd00::3");
        assert_eq!(name(choose(&l, "1", false)), "eth1 192.168.7.9");
        assert_eq!(name(choose(&l, "2", false)), "None");
        assert_eq!(name(choose(&l, "eth1", false)), "eth1 192.168.7.9");
        assert_eq!(name(choose(&l, "10.1.2.3", false)), "eth0 10.1.2.3");
        assert_eq!(name(choose(&l, "wlan0", false)), "None");
        // Loopback only when named.
        assert_eq!(name(choose(&l, "lo", false)), "lo 127.0.0.1");
        assert_eq!(name(choose(&l, "::1", true)), "lo ::1");
        let only_lo = vec![l[0].clone()];
        assert_eq!(choose(&only_lo, "", false), Choice::None);
    }

    #[test]
    fn both_families_come_from_one_interface_routable_ipv6_first() {
        let mut l = sample();
        l.insert(3, iface("eth0", "fe80::3", "ffff:ffff:ffff:ffff::", false));
        l.push(iface("eth1", "fe80::9", "ffff:ffff:ffff:ffff::", false));
        l.push(iface("eth2", "fd00::22", "ffff:ffff:ffff:ffff::", false));
        let both = |want: &str| {
            let (a, b) = choose_both(&l, want);
            (name(a), name(b))
        };
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(both(""), pair("eth0 10.1.2.3", "eth0 fd00::3"));
        assert_eq!(both("eth0"), pair("eth0 10.1.2.3", "eth0 fd00::3"));
        assert_eq!(both("10.1.2.3"), pair("eth0 10.1.2.3", "eth0 fd00::3"));
        assert_eq!(both("fd00::3"), pair("eth0 10.1.2.3", "eth0 fd00::3"));
        // Only a link-local IPv6 address there: taken.
        assert_eq!(both("eth1"), pair("eth1 192.168.7.9", "eth1 fe80::9"));
        // One family missing on the interface.
        assert_eq!(both("eth2"), pair("None", "eth2 fd00::22"));
        assert_eq!(both("*"), pair("Wildcard", "Wildcard"));
        assert_eq!(both("wlan0"), pair("None", "None"));
        assert!(is_link_local("fe80::1".parse().unwrap()));
        assert!(!is_link_local("fd00::1".parse().unwrap()));
        assert!(!is_link_local("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn broadcast_address_from_the_netmask() {
        let l = sample();
        assert_eq!(l[0].broadcast_v4(), Some(Ipv4Addr::new(127, 255, 255, 255)));
        assert_eq!(l[2].broadcast_v4(), Some(Ipv4Addr::new(10, 1, 255, 255)));
        assert_eq!(l[1].broadcast_v4(), None);
    }

    #[test]
    fn lists_interfaces_without_sending_anything() {
        // Only reads the table; a machine always has loopback.
        let l = list().unwrap();
        assert!(l.iter().any(|i| i.loopback), "{l:?}");
    }
}
