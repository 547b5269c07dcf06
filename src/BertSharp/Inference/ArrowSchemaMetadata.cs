using System.Text;

namespace BertSharp.Inference;

/// <summary>
/// The <c>ARROW:schema</c> key-value entry Apache Arrow's Parquet writer stores in a file's footer: the base64 of an
/// Arrow IPC schema message (continuation marker, length, a <c>Message</c> flatbuffer holding a <c>Schema</c>). Arrow
/// readers (pyarrow, pandas, ParquetSharp, Polars) use it to restore types Parquet cannot express, here the fixed list
/// size of an embedding column: without it a Parquet LIST reads back as a variable-size <c>list&lt;float&gt;</c>.
/// Only the few field types <c>bert embed</c> writes are supported. The flatbuffer is laid out front to back (every
/// table before the objects it points to, so all offsets are forward, as unsigned flatbuffer offsets must be) with
/// natural alignment; field numbers follow Arrow's Schema.fbs/Message.fbs.
/// </summary>
static class ArrowSchemaMetadata
{
    public const string Key = "ARROW:schema";

    /// <summary>An Arrow field type.</summary>
    public abstract record ArrowType;
    /// <summary>Arrow <c>Int</c>.</summary>
    public sealed record IntType(int BitWidth, bool Signed) : ArrowType;
    /// <summary>Arrow <c>FloatingPoint</c> single precision.</summary>
    public sealed record Float32Type : ArrowType;
    /// <summary>Arrow <c>Utf8</c>.</summary>
    public sealed record Utf8Type : ArrowType;
    /// <summary>Arrow <c>FixedSizeList</c> of <paramref name="Item"/>.</summary>
    public sealed record FixedSizeListType(int Size, ArrowField Item) : ArrowType;

    public sealed record ArrowField(string Name, bool Nullable, ArrowType Type);

    // Schema.fbs union Type (NONE = 0) and enums; Message.fbs MessageHeader and MetadataVersion.
    const byte TypeInt = 2, TypeFloatingPoint = 3, TypeUtf8 = 5, TypeFixedSizeList = 16;
    const short PrecisionSingle = 1;
    const byte HeaderSchema = 1;
    const short MetadataV5 = 4;

    /// <summary>The base64 value of the <c>ARROW:schema</c> entry for <paramref name="fields"/>.</summary>
    public static string Encode(IReadOnlyList<ArrowField> fields) => Convert.ToBase64String(IpcSchemaMessage(fields));

    /// <summary>An encapsulated IPC message: 0xFFFFFFFF, the padded flatbuffer length, the flatbuffer, no body.</summary>
    public static byte[] IpcSchemaMessage(IReadOnlyList<ArrowField> fields)
    {
        var schema = new Table([
            (1, new OffsetSlot(new TableVector(fields.Select(FieldTable).ToList()))),   // fields; endianness 0 = Little (default)
        ]);
        var message = new Table([
            (0, new ShortSlot(MetadataV5)),
            (1, new ByteSlot(HeaderSchema)),
            (2, new OffsetSlot(schema)),
        ]);
        var fb = new Builder();
        var flat = fb.Finish(message);
        int padded = (flat.Length + 7) & ~7;
        var result = new byte[8 + padded];
        BitConverter.TryWriteBytes(result.AsSpan(0), -1);
        BitConverter.TryWriteBytes(result.AsSpan(4), padded);
        flat.CopyTo(result, 8);
        return result;
    }

    static Table FieldTable(ArrowField f)
    {
        (byte tag, Table type, IReadOnlyList<ArrowField> children) = f.Type switch
        {
            IntType i => (TypeInt, new Table([(0, new IntSlot(i.BitWidth)), (1, new ByteSlot(i.Signed ? (byte)1 : (byte)0))]), (IReadOnlyList<ArrowField>)[]),
            Float32Type => (TypeFloatingPoint, new Table([(0, new ShortSlot(PrecisionSingle))]), []),
            Utf8Type => (TypeUtf8, new Table([]), []),
            FixedSizeListType l => (TypeFixedSizeList, new Table([(0, new IntSlot(l.Size))]), [l.Item]),
            _ => throw new NotSupportedException($"Arrow type {f.Type}"),
        };
        return new Table([
            (0, new OffsetSlot(new FbString(f.Name))),
            (1, new ByteSlot(f.Nullable ? (byte)1 : (byte)0)),
            (2, new ByteSlot(tag)),
            (3, new OffsetSlot(type)),
            (5, new OffsetSlot(new TableVector(children.Select(FieldTable).ToList()))),   // Arrow requires the vector, even empty
        ]);
    }

    abstract record Slot(int Size);
    sealed record ByteSlot(byte Value) : Slot(1);
    sealed record ShortSlot(short Value) : Slot(2);
    sealed record IntSlot(int Value) : Slot(4);
    sealed record OffsetSlot(Node Target) : Slot(4);

    abstract record Node;
    sealed record Table(IReadOnlyList<(int Field, Slot Value)> Slots) : Node;
    sealed record FbString(string Value) : Node;
    sealed record TableVector(IReadOnlyList<Table> Items) : Node;

    sealed class Builder
    {
        readonly List<byte> _b = [];

        public byte[] Finish(Table root)
        {
            Put32(0);   // root offset
            int pos = Write(root);
            Patch(0, pos);
            return _b.ToArray();
        }

        void Align(int n) { while (_b.Count % n != 0) _b.Add(0); }
        void Put16(int v) { _b.Add((byte)v); _b.Add((byte)(v >> 8)); }
        void Put32(int v) { for (int k = 0; k < 4; k++) _b.Add((byte)(v >> (8 * k))); }
        void Set32(int at, int v) { for (int k = 0; k < 4; k++) _b[at + k] = (byte)(v >> (8 * k)); }
        /// <summary>An unsigned offset at <paramref name="slot"/> to a later <paramref name="target"/>.</summary>
        void Patch(int slot, int target) => Set32(slot, checked(target - slot));

        int Write(Node node) => node switch
        {
            Table t => WriteTable(t),
            FbString s => WriteString(s.Value),
            TableVector v => WriteVector(v),
            _ => throw new NotSupportedException(),
        };

        int WriteString(string s)
        {
            Align(4);
            int pos = _b.Count;
            var bytes = Encoding.UTF8.GetBytes(s);
            Put32(bytes.Length);
            _b.AddRange(bytes);
            _b.Add(0);
            return pos;
        }

        int WriteVector(TableVector v)
        {
            Align(4);
            int pos = _b.Count;
            Put32(v.Items.Count);
            int first = _b.Count;
            foreach (var _ in v.Items) Put32(0);
            for (int i = 0; i < v.Items.Count; i++) Patch(first + 4 * i, Write(v.Items[i]));
            return pos;
        }

        int WriteTable(Table t)
        {
            // Inline layout: the soffset to the vtable, then each field at its natural alignment (the table starts
            // 4-aligned and no field is wider than 4 bytes).
            int fieldCount = t.Slots.Count == 0 ? 0 : t.Slots.Max(s => s.Field) + 1;
            var at = new int[t.Slots.Count];
            int size = 4;
            for (int i = 0; i < t.Slots.Count; i++)
            {
                int w = t.Slots[i].Value.Size;
                size = (size + w - 1) / w * w;
                at[i] = size;
                size += w;
            }
            // vtable: its size, the table's inline size, one u16 offset per field number (0 = absent).
            Align(2);
            int vtable = _b.Count;
            Put16(4 + 2 * fieldCount);
            Put16(size);
            var offsets = new int[fieldCount];
            for (int i = 0; i < t.Slots.Count; i++) offsets[t.Slots[i].Field] = at[i];
            foreach (var o in offsets) Put16(o);
            Align(4);
            int table = _b.Count;
            Put32(table - vtable);   // soffset: vtable = table − value
            while (_b.Count < table + size) _b.Add(0);
            var pending = new List<(int Slot, Node Target)>();
            for (int i = 0; i < t.Slots.Count; i++)
            {
                int p = table + at[i];
                switch (t.Slots[i].Value)
                {
                    case ByteSlot b: _b[p] = b.Value; break;
                    case ShortSlot s: _b[p] = (byte)s.Value; _b[p + 1] = (byte)(s.Value >> 8); break;
                    case IntSlot n: Set32(p, n.Value); break;
                    case OffsetSlot o: pending.Add((p, o.Target)); break;
                }
            }
            foreach (var (slot, target) in pending) Patch(slot, Write(target));
            return table;
        }
    }
}
