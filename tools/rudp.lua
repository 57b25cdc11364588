-- rudp.lua: a Wireshark/tshark dissector for librudp_shim's wire format
-- (core/wire.h is the reference; docs/wire.md summarises it).
--
--   tshark -X lua_script:build/bin/rudp.lua -r capture.pcap
--   wireshark: copy to ~/.local/lib/wireshark/plugins/ (or -X lua_script:...)
--
-- The protocol is "rudpshim" (display filter rudpshim, fields rudpshim.*):
-- Wireshark already has an "rudp" (Cisco's Reliable UDP).
-- Registered as a heuristic UDP dissector (magic "ru", version 1, a known
-- packet type: no port needed) and in "Decode As..." for any UDP port.
-- Every header field and frame is decoded; a datagram that core/wire.c
-- would reject (a field running past the end, an unknown frame type, an
-- ACK range below zero) gets an error expert item "rudpshim.malformed", as
-- Wireshark marks malformed packets, and decoding stops there.
--
-- Capture on the receiving host or on the wire: on the sending host a
-- packet tap sees a UDP GSO train (up to 64 datagrams sent in one call,
-- shim/engine/udpio.c) as one packet, which does not decode as one datagram.
-- RUDP_OFFLOAD=0 on the sender turns trains off.

-- Lua 5.2 (Wireshark 4.0) has bit32 and no bitwise operators; Lua 5.4
-- (later Wireshark) has the operators and no bit32.
local band, rshift
if bit32 then
    band, rshift = bit32.band, bit32.rshift
else
    band = load("return function(a, b) return a & b end")()
    rshift = load("return function(a, b) return a >> b end")()
end

local rudp = Proto("rudpshim", "librudp_shim reliable UDP")

local PKT = { [1] = "SYN", [2] = "RETRY", [3] = "SYNACK", [4] = "DATA", [5] = "RESET" }
local FRAME = {
    [0x00] = "PADDING", [0x01] = "PING", [0x02] = "ACK", [0x03] = "MAX_DATA",
    [0x04] = "DATA_BLOCKED", [0x05] = "RESET", [0x06] = "PATH_CHALLENGE", [0x07] = "PATH_RESPONSE",
    [0x08] = "STREAM", [0x09] = "STREAM", [0x0a] = "STREAM", [0x0b] = "STREAM",
    [0x0c] = "URGENT", [0x0d] = "NEW_PORT", [0x0e] = "NEW_TOKEN", [0x0f] = "SERVER_ADDR",
}
local TOKEN_MAX = 32
local ACK_MAX_RANGES = 64
local VARINT_MAX = UInt64(0xffffffff, 0x3fffffff) -- 2^62 - 1

local f = rudp.fields
f.magic = ProtoField.string("rudpshim.magic", "Magic")
f.version = ProtoField.uint8("rudpshim.version", "Version")
f.type = ProtoField.uint8("rudpshim.type", "Packet type", base.DEC, PKT, 0x0f)
f.flags = ProtoField.uint8("rudpshim.flags", "Flags", base.HEX, nil, 0xf0)
f.ack_now = ProtoField.bool("rudpshim.flags.ack_now", "ACK_NOW", 8, nil, 0x10)
f.zrtt = ProtoField.bool("rudpshim.flags.zrtt", "ZRTT (SYNACK: the SYN's bytes taken)", 8, nil, 0x20)
f.keyed = ProtoField.bool("rudpshim.flags.keyed", "KEYED (SYN, KEY refusal: the sender holds a key)", 8, nil, 0x40)
f.key = ProtoField.bool("rudpshim.flags.key", "KEY (RESET: refused for its key state)", 8, nil, 0x80)
f.pmtud = ProtoField.bool("rudpshim.flags.pmtud", "PMTUD (SYN: the client searches the path MTU)", 8, nil, 0x80)
f.dcid = ProtoField.uint64("rudpshim.dcid", "Destination connection ID", base.HEX)
f.pn = ProtoField.uint32("rudpshim.pn", "Packet number (low 32 bits)")
f.scid = ProtoField.uint64("rudpshim.scid", "Source connection ID", base.HEX)
f.token_len = ProtoField.uint8("rudpshim.token_len", "Token length")
f.token = ProtoField.bytes("rudpshim.token", "Token")
f.max_data = ProtoField.uint64("rudpshim.max_data", "Initial receive window (bytes)")
f.max_datagram = ProtoField.uint64("rudpshim.max_datagram", "Largest datagram accepted")
f.frame = ProtoField.uint8("rudpshim.frame", "Frame type", base.HEX, FRAME)
f.padding = ProtoField.uint32("rudpshim.padding", "Padding bytes")
f.ack_largest = ProtoField.uint64("rudpshim.ack.largest", "Largest acknowledged")
f.ack_delay = ProtoField.uint64("rudpshim.ack.delay_us", "ACK delay (us)")
f.ack_count = ProtoField.uint64("rudpshim.ack.range_count", "Range count")
f.ack_first = ProtoField.uint64("rudpshim.ack.first_range", "First range")
f.ack_gap = ProtoField.uint64("rudpshim.ack.gap", "Gap")
f.ack_len = ProtoField.uint64("rudpshim.ack.length", "Range length")
f.ack_range = ProtoField.string("rudpshim.ack.range", "Acknowledged")
f.max_data_frame = ProtoField.uint64("rudpshim.max_data.limit", "Peer may send below offset")
f.new_token = ProtoField.bytes("rudpshim.new_token", "Address token for the next connection")
f.urgent = ProtoField.uint64("rudpshim.urgent.offset", "Urgent byte at stream offset")
f.new_port = ProtoField.uint64("rudpshim.new_port", "The connection's new UDP port")
f.server_ip4 = ProtoField.ipv4("rudpshim.server_addr.ip4", "Another address of the server")
f.server_ip6 = ProtoField.ipv6("rudpshim.server_addr.ip6", "Another address of the server")
f.server_port = ProtoField.uint16("rudpshim.server_addr.port", "Its port")
f.blocked = ProtoField.uint64("rudpshim.data_blocked.limit", "Sender blocked at offset")
f.reset_code = ProtoField.uint64("rudpshim.reset.error", "Error code")
f.reset_final = ProtoField.uint64("rudpshim.reset.final_size", "Final size")
f.path_data = ProtoField.bytes("rudpshim.path.data", "Path data")
f.stream_fin = ProtoField.bool("rudpshim.stream.fin", "FIN")
f.stream_offset = ProtoField.uint64("rudpshim.stream.offset", "Offset")
f.stream_len = ProtoField.uint64("rudpshim.stream.length", "Length")
f.stream_data = ProtoField.bytes("rudpshim.stream.data", "Data")

local e_malformed = ProtoExpert.new("rudpshim.malformed", "Malformed rudp datagram",
    expert.group.MALFORMED, expert.severity.ERROR)
rudp.experts = { e_malformed }

-- QUIC's variable-length integer (RFC 9000 section 16) at off; returns the
-- value (UInt64), its length, or nil when it runs past the end.
local function varint(tvb, off)
    if off >= tvb:len() then return nil end
    local first = tvb(off, 1):uint()
    local n = ({ 1, 2, 4, 8 })[rshift(first, 6) + 1]
    if off + n > tvb:len() then return nil end
    local v = UInt64(band(first, 0x3f))
    for i = 1, n - 1 do
        v = v * 256 + tvb(off + i, 1):uint()
    end
    return v, n
end

local Bad = {}

local function bad(tree, tvb, off, why)
    local len = tvb:len() - off
    local range = len > 0 and tvb(off, len) or tvb(tvb:len() - 1, 1)
    tree:add_proto_expert_info(e_malformed, "Malformed: " .. why)
    tree:add(range, "[Malformed: " .. why .. "]")
    error(Bad)
end

-- Adds the varint at off to tree as field fld; returns value, next offset.
local function var_field(tree, tvb, off, fld, what)
    local v, n = varint(tvb, off)
    if not v then bad(tree, tvb, off, what .. " runs past the end") end
    tree:add(fld, tvb(off, n), v)
    return v, off + n
end

local function dissect_ack(t, tvb, off)
    local largest, count, first
    largest, off = var_field(t, tvb, off, f.ack_largest, "ACK largest")
    _, off = var_field(t, tvb, off, f.ack_delay, "ACK delay")
    count, off = var_field(t, tvb, off, f.ack_count, "ACK range count")
    first, off = var_field(t, tvb, off, f.ack_first, "ACK first range")
    if count > UInt64(ACK_MAX_RANGES - 1) then bad(t, tvb, off, "too many ACK ranges") end
    if first > largest then bad(t, tvb, off, "ACK range below 0") end
    local lo = largest - first
    local ranges = { tostring(lo) .. "-" .. tostring(largest) }
    for _ = 1, count:tonumber() do
        local gap, len
        gap, off = var_field(t, tvb, off, f.ack_gap, "ACK gap")
        len, off = var_field(t, tvb, off, f.ack_len, "ACK range length")
        if lo < UInt64(2) or gap > lo - 2 then bad(t, tvb, off, "ACK gap below 0") end
        local hi = lo - gap - 2
        if len > hi then bad(t, tvb, off, "ACK range below 0") end
        lo = hi - len
        ranges[#ranges + 1] = tostring(lo) .. "-" .. tostring(hi)
    end
    t:add(f.ack_range, table.concat(ranges, ", "))
    t:append_text(": " .. table.concat(ranges, ", "))
    return off
end

-- One frame at off; returns the offset after it and a short name.
local function dissect_frame(tree, tvb, off)
    local ft = tvb(off, 1):uint()
    local name = FRAME[ft]
    local t = tree:add(rudp, tvb(off), name and (name .. " frame") or "Frame")
    t:add(f.frame, tvb(off, 1))
    if not name then bad(t, tvb, off, string.format("unknown frame type 0x%02x", ft)) end
    local start = off
    off = off + 1
    if ft == 0x00 then
        while off < tvb:len() and tvb(off, 1):uint() == 0 do off = off + 1 end
        t:add(f.padding, tvb(start, off - start), off - start)
    elseif ft == 0x02 then
        off = dissect_ack(t, tvb, off)
    elseif ft == 0x03 then
        _, off = var_field(t, tvb, off, f.max_data_frame, "MAX_DATA")
    elseif ft == 0x04 then
        _, off = var_field(t, tvb, off, f.blocked, "DATA_BLOCKED")
    elseif ft == 0x05 then
        _, off = var_field(t, tvb, off, f.reset_code, "RESET error")
        _, off = var_field(t, tvb, off, f.reset_final, "RESET final size")
    elseif ft == 0x06 or ft == 0x07 then
        if off + 8 > tvb:len() then
            bad(t, tvb, start, "truncated " .. name)
        end
        t:add(f.path_data, tvb(off, 8))
        off = off + 8
    elseif ft == 0x0c then
        _, off = var_field(t, tvb, off, f.urgent, "URGENT offset")
    elseif ft == 0x0d then
        local port
        port, off = var_field(t, tvb, off, f.new_port, "NEW_PORT port")
        if port == UInt64(0) or port > UInt64(65535) then
            bad(t, tvb, start, "NEW_PORT port 0 or above 65535")
        end
    elseif ft == 0x0f then
        local fam = off < tvb:len() and tvb(off, 1):uint() or 0
        local n = fam == 4 and 4 or fam == 6 and 16 or 0
        if n == 0 or off + 1 + n + 2 > tvb:len() or tvb(off + 1 + n, 2):uint() == 0 then
            bad(t, tvb, start, "SERVER_ADDR family not 4 or 6, port 0, or past the end")
            off = tvb:len()
        else
            t:add(n == 4 and f.server_ip4 or f.server_ip6, tvb(off + 1, n))
            t:add(f.server_port, tvb(off + 1 + n, 2))
            off = off + 1 + n + 2
        end
    elseif ft == 0x0e then
        local n = off < tvb:len() and tvb(off, 1):uint() or 0
        if n == 0 or n > TOKEN_MAX or off + 1 + n > tvb:len() then
            bad(t, tvb, start, "NEW_TOKEN length missing, 0, above 32 or past the end")
            n = 0
        else
            t:add(f.new_token, tvb(off + 1, n))
        end
        off = off + 1 + n
    elseif ft >= 0x08 and ft <= 0x0b then
        t:add(f.stream_fin, tvb(start, 1), band(ft, 1) == 1)
        local offset, len
        offset, off = var_field(t, tvb, off, f.stream_offset, "STREAM offset")
        if band(ft, 2) ~= 0 then
            len, off = var_field(t, tvb, off, f.stream_len, "STREAM length")
            if len > UInt64(tvb:len() - off) then bad(t, tvb, off, "STREAM data runs past the end") end
        else
            len = UInt64(tvb:len() - off)
            t:add(f.stream_len, len):set_generated()
        end
        -- the last byte's offset must stay a varint (RFC 9000 section 19.8)
        if offset + len > VARINT_MAX then bad(t, tvb, start, "STREAM offset past 2^62 - 1") end
        local n = len:tonumber()
        if n > 0 then t:add(f.stream_data, tvb(off, n)) end
        t:append_text(string.format(": offset %s, %d bytes%s", tostring(offset), n,
            band(ft, 1) == 1 and ", FIN" or ""))
        off = off + n
    end
    t:set_len(off - start)
    return off, name
end

local function valid_start(tvb)
    return tvb:len() >= 16 and tvb(0, 1):uint() == 0x72 and tvb(1, 1):uint() == 0x75 and
        tvb(2, 1):uint() == 1 and PKT[band(tvb(3, 1):uint(), 0x0f)] ~= nil
end

-- One datagram from off; returns its summary for the Info column and
-- where the next datagram of a GSO train starts (nil: none).
local function dissect_one(tvb, off0, tree)
    local root = tree:add(rudp, tvb(off0))
    local d = tvb(off0):tvb()
    local type = d:len() > 3 and PKT[band(d(3, 1):uint(), 0x0f)] or nil
    local names, next_at = {}, nil
    local ok, err = pcall(function()
        root:add(f.magic, d(0, 2))
        root:add(f.version, d(2, 1))
        if d(2, 1):uint() ~= 1 then bad(root, d, 2, "unknown version") end
        if d:len() < 16 then bad(root, d, 0, "shorter than the 16-byte header") end
        root:add(f.type, d(3, 1))
        root:add(f.flags, d(3, 1))
        root:add(f.ack_now, d(3, 1))
        if type == "SYNACK" then root:add(f.zrtt, d(3, 1)) end
        if type == "SYN" or type == "RESET" then root:add(f.keyed, d(3, 1)) end
        if type == "RESET" then root:add(f.key, d(3, 1)) end
        if type == "SYN" then root:add(f.pmtud, d(3, 1)) end
        if not type then bad(root, d, 3, "unknown packet type") end
        root:add(f.dcid, d(4, 8))
        root:add(f.pn, d(12, 4))
        local off = 16
        if type == "SYN" or type == "RETRY" or type == "SYNACK" then
            if d:len() < 25 then bad(root, d, off, "handshake header cut short") end
            root:add(f.scid, d(16, 8))
            root:add(f.token_len, d(24, 1))
            local tl = d(24, 1):uint()
            if tl > TOKEN_MAX or d:len() - 25 < tl then bad(root, d, 24, "token length") end
            if tl > 0 then root:add(f.token, d(25, tl)) end
            off = 25 + tl
        end
        if type == "SYN" or type == "SYNACK" then
            _, off = var_field(root, d, off, f.max_data, "initial window")
            _, off = var_field(root, d, off, f.max_datagram, "largest datagram")
        end
        while off < d:len() do
            -- Frame type 0x72 does not exist: "ru", version 1 at a frame
            -- boundary is the next datagram of a GSO train (see the top).
            if valid_start(d(off):tvb()) then
                next_at = off0 + off
                break
            end
            if type == "RESET" then bad(root, d, off, "bytes after a RESET packet") end
            local name
            off, name = dissect_frame(root, d, off)
            if name ~= "PADDING" then names[#names + 1] = name end
        end
        root:set_len((next_at or (off0 + d:len())) - off0)
    end)
    local info = (type or "?") .. " pn=" .. (d:len() >= 16 and d(12, 4):uint() or "?")
    if d:len() >= 12 then info = info .. " dcid=" .. d(4, 8):uint64():tohex() end
    if #names > 0 then info = info .. " [" .. table.concat(names, ",") .. "]" end
    if not ok then
        if err ~= Bad then error(err) end
        info = info .. " [Malformed]"
    end
    return info, next_at
end

function rudp.dissector(tvb, pinfo, tree)
    if tvb:len() < 3 or tvb(0, 2):string() ~= "ru" then return 0 end
    pinfo.cols.protocol = "RUDPSHIM"
    local infos, off = {}, 0
    while off do
        local info
        info, off = dissect_one(tvb, off, tree)
        infos[#infos + 1] = info
    end
    pinfo.cols.info = table.concat(infos, " | ")
    return tvb:len()
end

local function heuristic(tvb, pinfo, tree)
    if not valid_start(tvb) then return false end
    rudp.dissector(tvb, pinfo, tree)
    return true
end

rudp:register_heuristic("udp", heuristic)
DissectorTable.get("udp.port"):add_for_decode_as(rudp)
