#!/usr/bin/python3
"""Reads a T-Union e-purse through PC/SC with pyscard: a client onecard did not write.

Usage: pyscard_read.py [READER-SUBSTRING]

Selects PPSE and the T-Union EP ADF, reads SFI 0x15, GET BALANCE and the 0x18 log, and prints
one `key value...` line per fact for the Rust test to check. Exits non-zero on any failure.
"""

import sys

from smartcard.System import readers

PPSE = b"2PAY.SYS.DDF01"
T_UNION_AID = bytes.fromhex("A000000632010105")


def hx(data):
    return bytes(data).hex().upper()


def find_tlv(data, tag):
    """Depth-first search of a BER-TLV tree (one- and two-byte tags, short and long lengths)."""
    i = 0
    while i < len(data):
        t = data[i]
        i += 1
        if t & 0x1F == 0x1F:
            t = (t << 8) | data[i]
            i += 1
        n = data[i]
        i += 1
        if n & 0x80:
            k = n & 0x7F
            n = int.from_bytes(data[i:i + k], "big")
            i += k
        value = data[i:i + n]
        i += n
        if t == tag:
            return value
        constructed = (t >> 8 if t > 0xFF else t) & 0x20
        if constructed:
            found = find_tlv(value, tag)
            if found is not None:
                return found
    return None


class Card:
    def __init__(self, connection):
        self.c = connection

    def transmit(self, apdu):
        """One command, resolving 61xx / 6Cxx as any PC/SC client must on T=0."""
        data, sw1, sw2 = self.c.transmit(list(apdu))
        if sw1 == 0x6C:
            data, sw1, sw2 = self.c.transmit(list(apdu[:4]) + [sw2])
        out = list(data)
        for _ in range(16):
            if sw1 != 0x61:
                break
            data, sw1, sw2 = self.c.transmit([0x00, 0xC0, 0x00, 0x00, sw2])
            out += data
        return bytes(out), (sw1 << 8) | sw2


def main():
    want = sys.argv[1] if len(sys.argv) > 1 else "Virtual PCD"
    matching = [r for r in readers() if want in str(r)]
    if not matching:
        print(f"error no reader matching {want!r}", file=sys.stderr)
        return 2
    connection = matching[0].createConnection()
    connection.connect()
    card = Card(connection)
    print("reader", matching[0])
    print("atr", hx(connection.getATR()))

    fci, sw = card.transmit([0x00, 0xA4, 0x04, 0x00, len(PPSE)] + list(PPSE) + [0x00])
    print("ppse_sw", f"{sw:04X}")
    aid = find_tlv(fci, 0x4F) if sw == 0x9000 else None
    print("ppse_aid", hx(aid) if aid else "-")

    fci, sw = card.transmit([0x00, 0xA4, 0x04, 0x00, len(T_UNION_AID)] + list(T_UNION_AID) + [0x00])
    print("adf_sw", f"{sw:04X}")
    if sw != 0x9000:
        return 1
    df_name = find_tlv(fci, 0x84)
    print("adf_name", hx(df_name) if df_name else "-")

    info, sw = card.transmit([0x00, 0xB0, 0x80 | 0x15, 0x00, 0x1E])
    print("sfi15_sw", f"{sw:04X}")
    if sw != 0x9000 or len(info) != 30:
        return 1
    print("issuer", hx(info[0:8]))
    print("serial", hx(info[10:20]))
    print("validity", hx(info[20:24]), hx(info[24:28]))

    balance, sw = card.transmit([0x80, 0x5C, 0x00, 0x02, 0x04])
    print("balance_sw", f"{sw:04X}")
    if sw != 0x9000 or len(balance) != 4:
        return 1
    # Bit 31 is masked as every reader does for other issuers' cards (B.1.6).
    print("balance", int.from_bytes(balance, "big") & 0x7FFFFFFF)

    # 0x18 is cyclic, record 1 the newest; 6A83 ends the written records.
    for n in range(1, 11):
        rec, sw = card.transmit([0x00, 0xB2, n, (0x18 << 3) | 4, 0x17])
        if sw == 0x6A83:
            break
        if sw != 0x9000 or len(rec) != 23:
            print("log_sw", f"{sw:04X}")
            return 1
        if not any(rec):
            break
        counter = int.from_bytes(rec[0:2], "big")
        amount = int.from_bytes(rec[5:9], "big")
        print("log", n, counter, amount, f"{rec[9]:02X}", hx(rec[10:16]), hx(rec[16:20]) + hx(rec[20:23]))
    connection.disconnect()
    print("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
